"""Formats the gateway and model_api both read and write, and the Redis client."""
