"""Devices: hardware plus runtime plus settings. Different settings are different devices."""
