"""What the redemption tracker's unit and integration tests share: builders and fixtures."""
