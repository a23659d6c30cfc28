"""Budgets and caps: Redis reservations (Lua) and their twin, seeding from the database,
exhaustion, and settling redemptions and voids. Pacing belongs here too when it comes."""
