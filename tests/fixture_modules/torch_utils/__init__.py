"""Test-only stand-in package named like the one published network pickles refer to."""
