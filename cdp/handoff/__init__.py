"""Human handoffs: the package an agent sees, routing, ownership and the agents themselves."""
