"""Rolled record files reach an S3-compatible bucket through the outbox."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

from tests.services import moto_s3
from vigil.apps.posture import PostureApp, PostureConfig
from vigil.apps.runner import RunOptions, run_app
from vigil.sources import ArraySource, SourceConfig

pytest.importorskip("boto3", reason="uploads need vigil[s3]")
pytest.importorskip("mediapipe", reason="the default pose model needs vigil[pose]")


def test_each_rolled_file_is_uploaded_under_device_and_date(tmp_path: Path) -> None:
    with moto_s3(directory=tmp_path / "moto") as s3:
        client = s3.client()
        client.create_bucket(Bucket="posture-records")
        config = PostureConfig.model_validate(
            {
                "device_id": "desk-9",
                "source": {
                    "start_time": "2026-11-20T10:00:00+00:00",
                    "image_interval_seconds": 1.0,
                },
                "records": {"roll_seconds": 10, "roll_dir": str(tmp_path / "rolled")},
                "sinks": {
                    "upload": {
                        "bucket": "posture-records",
                        "prefix": "vigil",
                        "endpoint_url": s3.endpoint_url,
                        "region": s3.region,
                        "access_key_id": s3.access_key_id,
                        "secret_access_key": s3.secret_access_key,
                    },
                    "outbox": {"path": str(tmp_path / "outbox.db")},
                },
            }
        )
        blank = np.full((120, 160, 3), 90, np.uint8)
        source = ArraySource(
            [blank] * 25, config=SourceConfig.model_validate(config.source.model_dump())
        )
        report = run_app(PostureApp(), config, RunOptions(source="arrays"), source=source)

        assert [p.name for p in report.rolled_files] == [
            "posture-desk-9-20261120T100000Z.csv",
            "posture-desk-9-20261120T100010Z.csv",
            "posture-desk-9-20261120T100020Z.csv",
        ]
        assert report.pending_messages == 0
        listed = client.list_objects_v2(Bucket="posture-records")  # the whole bucket
        keys = sorted(item["Key"] for item in listed.get("Contents", []))
        assert keys == [f"vigil/desk-9/2026/11/20/{p.name}" for p in report.rolled_files]
        body = client.get_object(Bucket="posture-records", Key=keys[0])["Body"].read()
        assert body == report.rolled_files[0].read_bytes()
        rows = list(csv.DictReader(io.StringIO(body.decode())))
        assert len(rows) == 10 and {r["device_id"] for r in rows} == {"desk-9"}
        client.close()
