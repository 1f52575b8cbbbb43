"""The Step Functions tasks of the S3-Inventory dataset snapshot: plan, shard (one per inventory file), finalize."""
