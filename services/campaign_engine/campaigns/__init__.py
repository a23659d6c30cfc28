"""Campaigns: the marketer API, its commands and schemas, and the lifecycle and tightening rules."""
