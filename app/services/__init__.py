"""Business logic of the HTTP service; routers stay thin and call these."""
