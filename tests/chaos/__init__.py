"""The chaos suite: fault injection, hostile input and a soak, each checked against the truth.

Every test is marked ``chaos``. ``scripts/test`` runs the short form; ``scripts/chaos`` runs the
long form (longer outages, more fuzzing, a ten-minute soak) and prints the results table.
"""
