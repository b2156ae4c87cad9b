"""AWS adapters (boto3), pointed anywhere by AWS_ENDPOINT_URL."""
