"""The importer's logic; ``main.py`` only holds the two Cloud Functions entry points.

- ``config``: the environment variables, checked at start-up (one table, shared with Terraform)
- ``events``: the finalize event and which objects are meant for the importer
- ``claims``: owning one file version (import record, lease, own rewrite, duplicates)
- ``staging``: the file's copies in the bucket (archive, reports, rewrite in place, parts)
- ``validation``: the CSV rules and the normalised file (also ``python -m functions validate``)
- ``ingest``: the ingest function's steps, in order
- ``poller``: one Cloud Tasks attempt: poll, join results to rows, conclude
- ``leanplum``: the Leanplum REST client (timeouts, bounded retries, no blind resend)
- ``poll_tasks`` / ``cloud_tasks_client``: the poll task and the Cloud Tasks client factory
- ``results``: the result message, published once per file
- ``records``, ``gcs``, ``logs``, ``errors``: the import record, storage access, structured
  logs, the error tree
"""
