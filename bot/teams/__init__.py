"""The botbuilder boundary: the only package that imports botbuilder.

Modules: :mod:`bot.teams.adapter` (CloudAdapter set-up, request hand-over), :mod:`bot.teams.bot`
(``ReviewBot``), :mod:`bot.teams.actions` (the card verb table), :mod:`bot.teams.connector`
(proactive Bot Connector calls), :mod:`bot.teams.credentials` (outbound auth for botbuilder).
Nothing is imported here, so importing one module does not drag in the others.
"""
