"""An emulated Android phone behind a fake ``adb`` executable, for testing the Android agent.

The agent runs ``adb`` as it would on a lab machine; the fake answers from a state directory
per phone, runs pushed .tflite files with LiteRT on the host and prints benchmark_model's
output. Tests can heat a phone up, unplug it or make a command hang (``PhoneDir.update``).
"""
