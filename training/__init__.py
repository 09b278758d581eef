"""Training side: data preparation, fine-tuning and the SageMaker training contract."""
