"""Access Review Bot: Microsoft Entra ID access reviews done in Microsoft Teams."""
