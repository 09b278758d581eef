"""Locust load tests for the model server, the API Gateway URL and SageMaker endpoints."""
