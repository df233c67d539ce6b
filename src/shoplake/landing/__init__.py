"""Where files arrive: discovery, the file ledger, archiving."""
