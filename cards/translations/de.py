"""German (de): formal "Sie", Microsoft's terms: Zugriffsüberprüfung, Prüfer, Empfehlung,
Genehmigen / Verweigern, „Mein Zugriff“."""

from __future__ import annotations

from collections.abc import Mapping

from cards.strings import S

TABLE: Mapping[str, str | Mapping[str, str]] = {
    S.DUE_TODAY: "heute",
    S.DUE_TOMORROW: "morgen",
    S.DUE_OVERDUE: {"one": "seit {n} Tag überfällig", "other": "seit {n} Tagen überfällig"},
    S.DUE_LINE: "Fällig am {date} ({relative})",
    S.DUE_SHORT_TODAY: "heute",
    S.DUE_SHORT_TOMORROW: "morgen",
    S.DUE_SHORT_WEEKDAY: "am {weekday}",
    S.DUE_SHORT_DATE: "am {date}",
    S.ENDED_ON: "Diese Überprüfung wurde am {date} beendet.",
    S.REVIEW_TITLE: "Zugriffsüberprüfung: {name}",
    S.REVIEW_RESOURCE: "Ressource: {resource}",
    S.STAGE: "Stufe {number} von {count}",
    S.PROGRESS: "{decided} von {total} entschieden",
    S.PROGRESS_SAVING: {"one": "{n} wird gespeichert", "other": "{n} werden gespeichert"},
    S.ALL_DONE: "Vielen Dank – alles erledigt",
    S.ALL_DONE_DETAIL: "Sie haben über jedes Element dieser Überprüfung entschieden.",
    S.REVIEW_ENDED: (
        "Diese Überprüfung ist beendet. Entscheidungen können nicht mehr geändert werden."
    ),
    S.NO_ITEMS: "In dieser Überprüfung gibt es nichts für Sie zu entscheiden.",
    S.INSTRUCTIONS: "Hinweise: {text}",
    S.DEFAULT_NONE: (
        "Entscheidet bis zum Fälligkeitsdatum niemand über ein Element, bleibt der Zugriff "
        "unverändert."
    ),
    S.DEFAULT_APPROVE: (
        "Entscheidet bis zum Fälligkeitsdatum niemand über ein Element, wird es genehmigt."
    ),
    S.DEFAULT_DENY: (
        "Entscheidet bis zum Fälligkeitsdatum niemand über ein Element, wird es **verweigert**."
    ),
    S.DEFAULT_RECOMMENDATION: (
        "Entscheidet bis zum Fälligkeitsdatum niemand über ein Element, wird die Empfehlung "
        "übernommen."
    ),
    S.AUTO_APPLY_ON: "Die Ergebnisse werden am Ende der Überprüfung automatisch angewendet.",
    S.AUTO_APPLY_OFF: ("Die Ergebnisse wendet der Besitzer der Überprüfung nach deren Ende an."),
    S.ENDED_DEFAULT_NONE: "Elemente ohne Entscheidung behalten ihren Zugriff.",
    S.ENDED_DEFAULT_APPROVE: "Elemente ohne Entscheidung wurden genehmigt.",
    S.ENDED_DEFAULT_DENY: "Elemente ohne Entscheidung wurden verweigert.",
    S.ENDED_DEFAULT_RECOMMENDATION: (
        "Für Elemente ohne Entscheidung wurde die Empfehlung übernommen."
    ),
    S.JUSTIFICATION_LABEL: "Begründung (für jede Entscheidung erforderlich)",
    S.JUSTIFICATION_PLACEHOLDER: "Warum soll dieser Zugriff bleiben oder entfernt werden?",
    S.JUSTIFICATION_ERROR: "Diese Überprüfung erfordert eine Begründung.",
    S.PAGE_INFO: "Seite {page} · Elemente {first}–{last} von {total}",
    S.PREVIOUS: "Zurück",
    S.NEXT: "Weiter",
    S.ACCEPT_RECOMMENDATIONS: "Empfehlungen übernehmen",
    S.RECOMMENDATION_COUNTS: "Empfehlungen: {approve} genehmigen, {deny} verweigern",
    S.OPEN_MY_ACCESS: "„Mein Zugriff“ öffnen",
    S.BULK_HINT: "Oder wählen Sie oben mehrere Elemente aus und entscheiden Sie gemeinsam:",
    S.SELECT: "Auswählen",
    S.FALLBACK: "Zugriffsüberprüfung „{name}“: {decided} von {total} entschieden.",
    S.GUEST: "Gast",
    S.MEMBER: "Mitglied",
    S.APPLICATION: "Anwendung",
    S.APP_ID: "App-ID {app_id}",
    S.ON_RESOURCE: "Zugriff auf {resource}",
    S.RECOMMENDATION_LINE: "Empfehlung: {recommendation}",
    S.RECOMMENDATION_WITH_REASON: "Empfehlung: {recommendation} – {reason}",
    S.RECOMMEND_APPROVE: "**genehmigen**",
    S.RECOMMEND_DENY: "**verweigern**",
    S.NO_RECOMMENDATION: "Keine Empfehlung",
    S.REASON_NO_RECENT_SIGN_IN: {
        "one": "seit {n} Tag keine Anmeldung",
        "other": "seit {n} Tagen keine Anmeldung",
    },
    S.REASON_NEVER_SIGNED_IN: "nie angemeldet",
    S.REASON_RECENT_SIGN_IN: "angemeldet {ago}",
    S.REASON_SIGNED_IN_TODAY: "heute angemeldet",
    S.REASON_PEER_OUTLIER: "Zugriff weicht von dem der Kollegen ab",
    S.REASON_ACCOUNT_DISABLED: "Konto deaktiviert",
    S.LAST_SIGN_IN: "Letzte Anmeldung: {when}",
    S.LAST_SIGN_IN_NEVER: "Letzte Anmeldung: nie",
    S.APPROVE: "Genehmigen",
    S.DENY: "Verweigern",
    S.DONT_KNOW: "Weiß nicht",
    S.DECIDED_APPROVE: "✓ Genehmigt von {who}",
    S.DECIDED_DENY: "✗ Verweigert von {who}",
    S.DECIDED_DONT_KNOW: "? Weiß nicht – von {who}",
    S.DECIDED_BY_YOU: "Ihnen",
    S.DECIDED_BY_UNKNOWN: "einem anderen Prüfer",
    S.WITH_TIME: "{text} · {when}",
    S.NOT_DECIDED: "Nicht entschieden",
    S.DECISION_REASON: "Begründung: {text}",
    S.SAVING_ITEM: "Wird gespeichert … ({decision})",
    S.FAILED_ITEM: "Nicht gespeichert: {message}",
    S.EARLIER_APPROVE: "Stufe {stage}: genehmigt von {who}",
    S.EARLIER_DENY: "Stufe {stage}: verweigert von {who}",
    S.EARLIER_DONT_KNOW: "Stufe {stage}: weiß nicht – von {who}",
    S.EARLIER_NOT_REVIEWED: "Stufe {stage}: nicht überprüft",
    S.EARLIER_REASON: "„{text}“",
    S.DECISION_NAME_APPROVE: "genehmigen",
    S.DECISION_NAME_DENY: "verweigern",
    S.DECISION_NAME_DONT_KNOW: "weiß nicht",
    S.PREVIEW_TITLE: "Empfehlungen für {name} übernehmen?",
    S.PREVIEW_DENY_INTRO: {
        "one": "**{n} Person oder App verliert den Zugriff** (verweigert):",
        "other": "**{n} Personen oder Apps verlieren den Zugriff** (verweigert):",
    },
    S.PREVIEW_NO_DENY: "Niemandem wird der Zugriff verweigert.",
    S.PREVIEW_APPROVE_COUNT: {
        "one": "{n} Element wird genehmigt.",
        "other": "{n} Elemente werden genehmigt.",
    },
    S.PREVIEW_UNCHANGED_COUNT: {
        "one": "{n} Element hat keine Empfehlung und bleibt unentschieden.",
        "other": "{n} Elemente haben keine Empfehlung und bleiben unentschieden.",
    },
    S.PREVIEW_MORE: {"one": "… und {n} weitere", "other": "… und {n} weitere"},
    S.PREVIEW_CONFIRM: "Empfehlungen übernehmen",
    S.PREVIEW_CANCEL: "Abbrechen",
    S.PREVIEW_NOTHING: "Es gibt keine Empfehlungen mehr zu übernehmen.",
    S.REMINDER_TITLE: "Erinnerung: {name}",
    S.REMINDER_LEFT: "Noch {left} von {total} offen, fällig {due}",
    S.SNOOZE_TOMORROW: "Bis morgen pausieren",
    S.SNOOZE_4H: "4 Stunden pausieren",
    S.ESCALATION_TITLE: "Zugriffsüberprüfung: Handlungsbedarf",
    S.ESCALATION_LINE: {
        "one": "**{who}** hat noch {n} offene Entscheidung, fällig {due}",
        "other": "**{who}** hat noch {n} offene Entscheidungen, fällig {due}",
    },
    S.ESCALATION_REVIEW: "Überprüfung: {name}",
    S.ESCALATION_PROGRESS: "Bisher {decided} von {total} entschieden",
    S.ESCALATION_DUE: "Fällig am {date} ({relative})",
    S.NUDGE: "Erinnern",
    S.NUDGED_AT: "Erinnerung an {who} gesendet · {when}",
    S.UNKNOWN_REVIEWER: "Ein Prüfer",
    S.PENDING_TITLE: "Ihre offenen Zugriffsüberprüfungen",
    S.PENDING_NONE: "Sie haben keine offenen Zugriffsüberprüfungen.",
    S.PENDING_LINE: "Noch {pending} von {total} offen · fällig {due}",
    S.PENDING_OPEN: "Öffnen",
    S.PENDING_MORE: {
        "one": "… und {n} weitere Überprüfung. Alle finden Sie in „Mein Zugriff“.",
        "other": "… und {n} weitere Überprüfungen. Alle finden Sie in „Mein Zugriff“.",
    },
    S.HELP_TITLE: "Was ich für Sie tun kann",
    S.HELP_INTRO: (
        "Ich sende Ihnen die Zugriffsüberprüfungen, über die Sie entscheiden sollen, erinnere "
        "Sie vor dem Fälligkeitsdatum und erfasse Ihre Entscheidungen in Ihrem Namen in "
        "Microsoft Entra ID."
    ),
    S.HELP_PENDING: "**offen** – Ihre offenen Zugriffsüberprüfungen anzeigen",
    S.HELP_SNOOZE: "**pausieren** – Erinnerungen bis zu Ihrem nächsten Arbeitstag pausieren",
    S.HELP_HELP: "**hilfe** – diese Nachricht anzeigen",
    S.HELP_CARDS: (
        "Wählen Sie auf einer Überprüfungskarte für jedes Element „Genehmigen“, „Verweigern“ "
        "oder „Weiß nicht“, entscheiden Sie über mehrere ausgewählte Elemente gemeinsam, oder "
        "übernehmen Sie die Empfehlungen, nachdem Sie geprüft haben, wem der Zugriff "
        "verweigert wird."
    ),
    S.SIGNIN_TITLE: "Anmeldung erforderlich",
    S.SIGNIN_SIGN_IN_REQUIRED: (
        "Damit ich Entscheidungen in Ihrem Namen erfassen kann, melden Sie sich bitte einmal "
        "bei Microsoft Entra ID an."
    ),
    S.SIGNIN_CONSENT_REQUIRED: (
        "Damit ich Entscheidungen in Ihrem Namen erfassen kann, braucht diese App Ihre "
        "Zustimmung, Zugriffsüberprüfungen in Ihrem Auftrag zu bearbeiten."
    ),
    S.SIGNIN_MFA_REQUIRED: (
        "Ihre Organisation verlangt, dass Sie Ihre Identität bestätigen (mehrstufige "
        "Authentifizierung), bevor Entscheidungen erfasst werden können."
    ),
    S.SIGNIN_BUTTON: "Anmelden",
    S.SIGNIN_DONE: "Ich habe mich angemeldet – erneut versuchen",
    S.SIGNIN_NOTE: "Ihre Entscheidung wurde noch nicht erfasst.",
    S.MSG_NOT_A_REVIEWER: "Sie sind nicht mehr Prüfer für dieses Element.",
    S.MSG_ALREADY_DECIDED: "Über dieses Element hat bereits {detail} entschieden.",
    S.MSG_REVIEW_ENDED: (
        "Diese Überprüfung ist beendet. Entscheidungen können nicht mehr geändert werden."
    ),
    S.MSG_DECISION_SAVED: "Ihre Entscheidung wurde gespeichert.",
    S.MSG_DECISION_FAILED: (
        "Ihre Entscheidung konnte nicht gespeichert werden. Bitte versuchen Sie es erneut."
    ),
    S.MSG_SAVING: (
        "Ihre Entscheidungen werden gespeichert … Diese Karte wird aktualisiert, sobald sie "
        "erfasst sind."
    ),
    S.MSG_JUSTIFICATION_REQUIRED: (
        "Diese Überprüfung erfordert zu jeder Entscheidung eine Begründung."
    ),
    S.MSG_NOTHING_SELECTED: "Wählen Sie zuerst mindestens ein Element aus.",
    S.MSG_THROTTLED: (
        "Microsoft Entra ID ist gerade ausgelastet. Bitte versuchen Sie es in einer Minute erneut."
    ),
    S.MSG_SNOOZED: "OK – ich erinnere Sie wieder: {at}.",
    S.MSG_NUDGE_SENT: "Erinnerung an {detail} gesendet.",
    S.MSG_RECOMMENDATIONS_ACCEPTED: "Empfehlungen übernommen.",
    S.MSG_NO_PENDING_REVIEWS: "Sie haben keine offenen Zugriffsüberprüfungen.",
    S.MSG_UNKNOWN_COMMAND: (
        "Das habe ich leider nicht verstanden. Geben Sie **hilfe** ein, um zu sehen, was ich kann."
    ),
    S.MSG_FORBIDDEN: "Dazu sind Sie nicht berechtigt.",
    S.MSG_GENERIC_ERROR: (
        "Bei uns ist etwas schiefgelaufen. Bitte versuchen Sie es später erneut."
    ),
    S.MESSAGE_TITLE_INFO: "Zugriffsüberprüfungen",
    S.MESSAGE_TITLE_SUCCESS: "Erledigt",
    S.MESSAGE_TITLE_WARNING: "Bitte prüfen",
    S.MESSAGE_TITLE_ERROR: "Etwas ist schiefgelaufen",
    S.BACK_TO_REVIEW: "Zurück zur Überprüfung",
    S.BACK_TO_LIST: "Zurück zu meinen Überprüfungen",
    S.SUMMARY_REVIEW: "Zugriffsüberprüfung: {name}",
    S.SUMMARY_REMINDER: "Erinnerung: {name}",
    S.SUMMARY_PENDING: "Ihre offenen Zugriffsüberprüfungen",
    S.SUMMARY_ESCALATION: "Eine Zugriffsüberprüfung braucht Ihre Aufmerksamkeit",
    S.COMMAND_PENDING: "offen",
    S.COMMAND_HELP: "hilfe",
    S.COMMAND_SNOOZE: "pausieren",
    S.COMMAND_TOMORROW: "morgen",
    S.CHAT_WELCOME: (
        "Hallo, ich bin Access Review Bot. Wenn eine Zugriffsüberprüfung Ihre Entscheidung "
        "braucht, sende ich sie Ihnen hierher – genehmigen oder verweigern Sie mit einem Klick. "
        "Geben Sie **hilfe** ein, um zu sehen, was ich kann."
    ),
    S.CHAT_HELP: (
        "Ich helfe Ihnen, Ihre Microsoft Entra-Zugriffsüberprüfungen zu erledigen, ohne Teams "
        "zu verlassen.\n\n"
        "- **offen**: Ihre offenen Überprüfungen und was in jeder noch zu tun ist\n"
        "- **pausieren 4h** oder **pausieren morgen**: eine Weile weniger Erinnerungen\n"
        "- **hilfe**: diese Nachricht\n\n"
        "Wenn eine Überprüfung Sie braucht, sende ich Ihnen eine Karte: genehmigen, verweigern "
        "oder „Weiß nicht“ – jeweils mit einem Klick."
    ),
    S.CHAT_NOT_UNDERSTOOD: "Das habe ich nicht verstanden.",
    S.CHAT_WHO_ARE_YOU: (
        "Ich konnte nicht feststellen, wer Sie sind, und kann Ihre Überprüfungen deshalb nicht "
        "anzeigen."
    ),
    S.CHAT_SNOOZE_UNAVAILABLE: (
        "Hier laufen keine Erinnerungen, es gibt also nichts zu pausieren."
    ),
    S.CHAT_SNOOZE_NOTHING_OPEN: (
        "Sie haben keine offenen Überprüfungen, also auch keine Erinnerungen zu pausieren."
    ),
    S.CHAT_SNOOZE_USAGE: "Versuchen Sie **pausieren 4h** oder **pausieren morgen**.",
    S.CHAT_SNOOZE_NOTHING: "Im Moment gibt es nichts zu pausieren.",
    S.CHAT_SNOOZED_UNTIL: (
        "Erinnerungen pausiert bis {until} (nie über die letzte Erinnerung vor einem "
        "Fälligkeitsdatum hinaus)."
    ),
    S.CHAT_TURN_ERROR: (
        "Entschuldigung, bei mir ist etwas schiefgelaufen. Bitte versuchen Sie es erneut."
    ),
    S.ERROR_UNSUPPORTED_BUTTON: "Diese Schaltfläche wird nicht unterstützt.",
    S.ERROR_MALFORMED_CARD: (
        "Diese Karte hat Daten gesendet, die ich nicht lesen kann. Öffnen Sie die Überprüfung "
        "erneut."
    ),
    S.ERROR_NOT_READY: "Der Bot wird gerade gestartet. Bitte versuchen Sie es gleich noch einmal.",
    S.ERROR_BUSY: "Der Bot ist gerade ausgelastet und konnte Ihren Klick nicht bestätigen. Bitte versuchen Sie es gleich noch einmal.",
    S.ERROR_UNIDENTIFIED: "Ihr Konto konnte nicht erkannt werden.",
    S.ERROR_SSO_NOT_CONFIGURED: "Einmaliges Anmelden ist nicht konfiguriert.",
    S.ERROR_CONSENT_NEEDED: (
        "Bevor der Bot in Ihrem Namen handeln kann, ist Ihre Zustimmung erforderlich."
    ),
    S.ERROR_SIGN_IN_TO_TEAMS: "Bitte melden Sie sich bei Teams an und versuchen Sie es erneut.",
    S.LOGIN_PROMPT: "Melden Sie sich an, damit Ihre Entscheidung in Ihrem Namen erfasst wird.",
    S.MSG_JUSTIFICATION_TOO_LONG: "Diese Begründung ist zu lang: Eine Begründung darf höchstens {detail} Zeichen haben. Kürzen Sie sie, und versuchen Sie es erneut.",
    S.MSG_NUDGE_NOT_RECIPIENT: "Sie können nur Prüfer erinnern, deren Eskalation an Sie gesendet wurde. Es wurde nichts gesendet.",
    S.REVIEW_APPLIED: "Diese Überprüfung ist beendet, und ihre Ergebnisse wurden angewendet.",
    S.REVIEW_APPLYING: "Diese Überprüfung ist beendet, und ihre Ergebnisse werden angewendet.",
    S.REVIEW_AUTO_REVIEWED: "Diese Überprüfung ist beendet. Über die Elemente, über die niemand entschieden hat, wurde automatisch entschieden.",
    S.REVIEW_AUTO_REVIEWING: "Diese Überprüfung ist beendet, und über die offenen Elemente wird automatisch entschieden – keine weiteren Entscheidungen möglich.",
    S.REVIEW_COMPLETING: "Diese Überprüfung wird abgeschlossen – keine weiteren Entscheidungen möglich.",
    S.REVIEW_NOT_OPEN: "Diese Überprüfung ist nicht für Entscheidungen geöffnet.",
    S.REVIEW_NOT_STARTED: "Diese Überprüfung hat noch nicht begonnen. Sie können entscheiden, sobald sie beginnt.",
    S.REVIEW_STARTING: "Diese Überprüfung wird gestartet. Sie können in wenigen Minuten entscheiden.",
    S.STATUS_APPLIED: "Angewendet",
    S.STATUS_APPLYING: "Ergebnisse werden angewendet",
    S.STATUS_AUTO_REVIEWED: "Automatisch entschieden",
    S.STATUS_AUTO_REVIEWING: "Wird automatisch entschieden – keine Entscheidungen mehr",
    S.STATUS_COMPLETED: "Abgeschlossen",
    S.STATUS_COMPLETING: "Wird abgeschlossen – keine Entscheidungen mehr",
    S.STATUS_DELETED: "Gelöscht",
    S.STATUS_IN_PROGRESS: "In Bearbeitung",
    S.STATUS_NOT_OPEN: "Nicht für Entscheidungen geöffnet ({status})",
    S.STATUS_NOT_STARTED: "Nicht gestartet",
    S.STATUS_STARTING: "Wird gestartet",
}
