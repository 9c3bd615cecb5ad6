"""XDV on more than one machine: XDV nodes as Ray actors, deterministic placement, sealed
node-to-node transport, agreement on the cluster's decisions, and a merged, verifiable cluster
trace."""
