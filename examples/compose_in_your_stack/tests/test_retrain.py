"""This app's retrain loop, deployed to the embedded local AWS by the cdk_mlops.testing plugin.

The plugin deploys the stage once per session (pytest.ini names the app and the stage); each
test gets a driver for the deployed retrain trigger. The trigger runs in commit-marker mode,
so a data drop starts training when its ``_SUCCESS`` marker lands, not before.
"""

from __future__ import annotations


def test_a_committed_data_drop_starts_exactly_one_training_run(mlops_retrain, mlops_client):
    # GIVEN a data drop in the churn dataset, then its commit marker
    data_key = mlops_retrain.put_object("2026-12-01/part-0001.csv", "tenure,plan,churned\n3,basic,1\n40,pro,0\n")
    mlops_retrain.put_object("2026-12-01/_SUCCESS", b"")

    # WHEN S3's events go through the deployed rule and queue to the retrain handler
    started = mlops_retrain.deliver_until_started()

    # THEN the pipeline has exactly one execution, started on a manifest of the drop
    summaries = mlops_client("sagemaker").list_pipeline_executions(PipelineName=mlops_retrain.pipeline_name)
    assert [s["PipelineExecutionArn"] for s in summaries["PipelineExecutionSummaries"]] == [started.execution_arn]
    manifest = mlops_retrain.manifest(started.execution_arn)
    assert manifest.dataset == "churn"
    assert data_key in [entry.key for entry in manifest.entries]
    assert mlops_retrain.parameters(started.execution_arn)["InputManifestUri"] == manifest.uri
