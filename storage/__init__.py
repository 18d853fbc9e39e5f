"""Where editq's state lives: S3 objects (boto3) and Redis records, queues, limiter and ledger."""
