"""The reliability suite reuses the service fixtures (demo warehouse, apps, receivers)."""

from tests.platforms.conftest import spark_session  # noqa: E402, F401
from tests.service.conftest import app_factory, receiver, warehouse_path, warehouse_template  # noqa: F401
