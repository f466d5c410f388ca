"""Hardware hosts: a host's device inventory file, device leases, and the health check of a leased device."""
