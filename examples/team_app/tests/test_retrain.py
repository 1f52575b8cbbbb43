"""The team's two stacks on the local AWS: one data drop in the legacy bucket starts one training run.

The plugin deploys ``Team/Data`` and ``Team/Training`` once (pytest.ini); ``conftest.py`` creates
the legacy bucket and key first. The trigger runs in its default mode: new objects start
training once the quiet period has passed, which the driver's simulated clock lets pass.
"""

from __future__ import annotations

from conftest import LEGACY_BUCKET


def test_the_retrain_function_runs_in_the_data_stacks_subnets(mlops_deployment, mlops_retrain, mlops_client):
    # The subnets are created in Team-Data and reach Team-Training through exports.
    exported = {e["Value"] for e in mlops_client("cloudformation").list_exports()["Exports"]}
    subnets = set(mlops_deployment.physical_ids("AWS::EC2::Subnet"))
    function = mlops_client("lambda").get_function_configuration(FunctionName=mlops_retrain.platform.function.name)
    used = set(function["VpcConfig"]["SubnetIds"])
    assert used
    assert used <= subnets & exported


def test_a_data_drop_in_the_legacy_bucket_starts_exactly_one_training_run(mlops_retrain, mlops_client):
    # GIVEN the trigger watches the team's existing bucket
    assert mlops_retrain.bucket == LEGACY_BUCKET

    # WHEN a file lands in the churn dataset and the events are delivered
    key = mlops_retrain.put_object("2026-12-02/customers.csv", "tenure,plan,churned\n7,basic,0\n1,pro,1\n")
    started = mlops_retrain.deliver_until_started()

    # THEN exactly one execution started, on a manifest of the file
    summaries = mlops_client("sagemaker").list_pipeline_executions(PipelineName=mlops_retrain.pipeline_name)
    assert [s["PipelineExecutionArn"] for s in summaries["PipelineExecutionSummaries"]] == [started.execution_arn]
    manifest = mlops_retrain.manifest(started.execution_arn)
    assert manifest.bucket == LEGACY_BUCKET
    assert [entry.key for entry in manifest.entries] == [key]
