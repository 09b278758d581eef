"""Locust load tests for the model server, the API Gateway URL and SageMaker endpoints."""

# Where the API key comes from (the environment rather than argv, which `ps` shows); shared
# by the command (loadtest.cli) and the locust process (loadtest.locustfile).
API_KEY_ENV = "NEWS_CLASSIFIER_API_KEY"
