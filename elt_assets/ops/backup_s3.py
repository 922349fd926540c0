"""Backups on S3 through dagster-aws's S3 resource, encrypted at rest by the server."""

from pathlib import Path

from dagster_aws.s3 import S3Resource

from elt_assets.ops.backup_files import BACKUP_PREFIX, MANIFEST, private_dir, private_file
from elt_assets.resources import s3_from_env


def resolved_s3_from_env() -> S3Resource:
    """The same resource with its EnvVars read now, for use outside a run (the CLI)."""
    return s3_from_env().process_config_and_initialize()


class S3BackupTarget:
    """s3://bucket/prefix: uploads with server-side encryption, lists and prunes backups."""

    def __init__(self, url: str, s3: S3Resource, server_side_encryption: str, kms_key_id: str | None):
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            raise ValueError(f"{url!r} names no bucket")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = s3.get_client()
        self.extra_args: dict[str, str] = {}
        if server_side_encryption:
            self.extra_args["ServerSideEncryption"] = server_side_encryption
        if server_side_encryption == "aws:kms" and kms_key_id:
            self.extra_args["SSEKMSKeyId"] = kms_key_id

    def upload(self, folder: Path, name: str) -> str:
        files = sorted(path for path in folder.rglob("*") if path.is_file() and path.name != MANIFEST)
        # The manifest goes last: its presence marks the backup complete.
        for path in [*files, folder / MANIFEST]:
            key = f"{self.prefix}{name}/{path.relative_to(folder).as_posix()}"
            self.client.upload_file(str(path), self.bucket, key, ExtraArgs=self.extra_args)
        return f"s3://{self.bucket}/{self.prefix}{name}"

    def backup_names(self) -> list[str]:
        """Names of the complete backups under the prefix, oldest first."""
        names = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + BACKUP_PREFIX):
            for item in page.get("Contents", []):
                name, _, rest = item["Key"][len(self.prefix):].partition("/")
                if rest == MANIFEST:
                    names.append(name)
        return sorted(names)

    def prune(self, keep: int) -> list[str]:
        doomed = self.backup_names()[:-keep]
        for name in doomed:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}{name}/"):
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:
                    self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})
        return doomed

    def download(self, name: str, folder: Path) -> None:
        """Fetch one backup into folder (private, like a local backup)."""
        private_dir(folder)
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}{name}/"):
            for item in page.get("Contents", []):
                relative = item["Key"][len(f"{self.prefix}{name}/"):]
                target = folder / relative
                if folder.resolve() not in target.resolve().parents:
                    raise ValueError(f"refusing object key outside the backup: {item['Key']}")
                private_dir(target.parent)
                private_file(target)
                self.client.download_file(self.bucket, item["Key"], str(target))
