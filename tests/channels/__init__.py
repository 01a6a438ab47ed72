"""Channel contract and provider tests."""
