"""The dashboard: server-rendered pages whose charts read the service's own data endpoints."""
