"""Lambda runtime code, one package per function.

Nothing here imports aws_cdk: these modules run inside Lambda, where only the
standard library and boto3 are available.
"""
