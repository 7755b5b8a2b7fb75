"""One pydantic schema per wire object, imported by the service and by the client alike."""
