"""Offers: asking the campaign engine, delivering its decision, held greetings, and what follows."""
