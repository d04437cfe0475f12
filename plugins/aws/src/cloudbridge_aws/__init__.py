"""cloudbridge-aws: the AWS provider (S3 storage, SageMaker training jobs, SageMaker endpoints).

Importing this package imports no AWS SDK; boto3 is loaded inside the functions that call AWS.
The provider is registered by :mod:`cloudbridge_aws.plugin` through the ``cloudbridge`` entry point.
"""

__version__ = "0.1.0"
