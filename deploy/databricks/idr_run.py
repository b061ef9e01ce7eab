# Databricks notebook source
# MAGIC %md
# MAGIC # idr run
# MAGIC
# MAGIC Runs idr's pipeline on this cluster's Spark session: the same steps, the same tables
# MAGIC (`idr_meta`, `idr_out`, `idr_work`) as a run from the HTTP API or `idr run`.
# MAGIC
# MAGIC - **mode**: `FULL` or `INCR`.
# MAGIC - **dry_run**: `true` previews the run into `idr_out.dry_run_results` /
# MAGIC   `dry_run_summary` and never touches the production tables.
# MAGIC
# MAGIC The idr repository must be reachable: open this notebook from a Git folder holding
# MAGIC the repository (its root is put on `sys.path` below), or install the package on the
# MAGIC cluster. The configuration (sources, rules) is applied beforehand with
# MAGIC `idr config apply` or the HTTP API. A failed run fails the notebook (and its job);
# MAGIC the notebook's exit value is the run's summary as JSON.

# COMMAND ----------

# MAGIC %pip install -q "sqlglot>=26" "pydantic>=2.7" "pydantic-settings>=2.3" "pyyaml>=6" "duckdb>=2.0"

# COMMAND ----------

dbutils.widgets.dropdown("mode", "INCR", ["INCR", "FULL"], "mode")
dbutils.widgets.dropdown("dry_run", "false", ["false", "true"], "dry_run")

# COMMAND ----------

import json
import os
import sys
from pathlib import Path

try:
    import app.inwarehouse  # noqa: F401 - installed on the cluster
except ImportError:
    # A Git folder: this notebook is <repo>/deploy/databricks/idr_run.py and runs in its folder.
    sys.path.insert(0, str(Path(os.getcwd()).resolve().parents[1]))

from app.inwarehouse import run_here
from app.platforms.spark import SparkSessionAdapter

# COMMAND ----------

# `spark` and `dbutils` are the globals Databricks gives every notebook.
adapter = SparkSessionAdapter(lambda: spark)
result = run_here(adapter, dbutils.widgets.get("mode"), dbutils.widgets.get("dry_run"))
print(result.pop("report", None) or json.dumps(result, indent=2, default=str))

# COMMAND ----------

dbutils.notebook.exit(json.dumps(result, default=str))
