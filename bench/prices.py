"""The price table of the cost model (`bench/cost.py`), in one place.

List prices as of 2026-12-07, entered by hand from memory of Google Cloud's public price pages (no internet on the
machine that wrote them): TO BE CHECKED against https://cloud.google.com/firestore/pricing,
https://cloud.google.com/run/pricing (Cloud Functions 2nd gen bills as Cloud Run), https://cloud.google.com/pubsub/pricing,
https://cloud.google.com/tasks/pricing, https://cloud.google.com/sql/pricing and
https://cloud.google.com/memorystore/docs/valkey/pricing before anyone budgets with them. US-tier prices; Jakarta
(asia-southeast2) lists most of these some 10-25 % higher, which moves every line alike and no comparison below.
Free tiers are ignored (they matter only at the smallest volume). FCM is free.
"""

from __future__ import annotations

PRICES_AS_OF = "2026-12-07 (list prices entered by hand, to be checked)"

# Firestore (Native mode), per document operation.
FIRESTORE_READ = 0.06 / 100_000
FIRESTORE_WRITE = 0.18 / 100_000
FIRESTORE_DELETE = 0.02 / 100_000

# Cloud Functions 2nd gen = Cloud Run, request-based billing (CPU allocated only while a request runs).
RUN_REQUEST = 0.40 / 1_000_000
RUN_VCPU_SECOND = 0.000024
RUN_GIB_SECOND = 0.0000025
# Idle minimum instances (request-based billing): billed at the idle rate while no request runs.
RUN_IDLE_VCPU_SECOND = 0.0000025
RUN_IDLE_GIB_SECOND = 0.0000025
# Instance-based billing (CPU always allocated), as an always-on Cloud Run service pays.
RUN_ALWAYS_VCPU_SECOND = 0.000018
RUN_ALWAYS_GIB_SECOND = 0.000002

# Pub/Sub: $40 per TiB of throughput, each publish and each delivery billed at 1 KB at least.
PUBSUB_PER_KB = 40 / (1024**3)
# Cloud Tasks: $0.40 per million billable operations (creating a task, each push attempt).
TASKS_OPERATION = 0.40 / 1_000_000

# Cloud SQL for PostgreSQL (Enterprise), per month: one vCPU, 3.75 GB, 20 GB SSD, no HA.
CLOUD_SQL_MONTH = 30.15 + 3.75 * 5.11 + 20 * 0.17
# Memorystore for Valkey, smallest node (shared core), per hour.
VALKEY_NODE_HOUR = 0.044

SECONDS_PER_MONTH = 30 * 24 * 3600
