"""Delivery to Teams and the reminder schedule.

Import the modules themselves (kept free of package-level imports so that ``bot.settings`` can
read the schedule's settings without pulling in the delivery side):

- :mod:`bot.notify.delivery` — the outbox of card messages and its worker;
- :mod:`bot.notify.ratelimit` — the Teams rate limits;
- :mod:`bot.notify.notifier` — discovery events → queued cards;
- :mod:`bot.notify.views` — store records → card view models;
- :mod:`bot.notify.policy`, :mod:`bot.notify.worktime`, :mod:`bot.notify.schedule` — when to remind;
- :mod:`bot.notify.reminders` — the reminder and escalation loop.
"""
