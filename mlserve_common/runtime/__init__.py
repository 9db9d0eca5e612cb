"""The serving runtime both services run on: uvicorn, Starlette and FastAPI."""
