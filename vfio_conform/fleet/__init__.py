"""Many lab hosts as one fleet: devices booked through labgrid, results in one shared store."""
