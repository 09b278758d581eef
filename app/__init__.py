"""Serving side: the FastAPI model server for the SageMaker hosting contract."""
