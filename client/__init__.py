"""A typed Python client for the classification API and SageMaker endpoints."""
