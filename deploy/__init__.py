"""Deployment tooling: ECR, S3, SageMaker training jobs and endpoints, the local API front."""
