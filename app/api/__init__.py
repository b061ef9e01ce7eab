"""HTTP routers, one per resource. Routes parse, call a service, return a schema."""
