"""Code both services share: request ids, logging, the error envelope."""
