"""gatemill compiler: zoo, frontend, IR, golden model, CLI."""
