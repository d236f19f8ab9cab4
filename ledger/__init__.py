"""kmo-ledger: the event-sourced ledger behind KMO-portefeuille (SME wallet) wallets."""
