"""Dutch (nl): "u", Microsoft's terms: toegangsbeoordeling, revisor, aanbeveling,
Goedkeuren / Weigeren / Weet ik niet, Mijn toegang."""

from __future__ import annotations

from collections.abc import Mapping

from cards.strings import S

TABLE: Mapping[str, str | Mapping[str, str]] = {
    S.DUE_TODAY: "vandaag",
    S.DUE_TOMORROW: "morgen",
    S.DUE_OVERDUE: {"one": "{n} dag te laat", "other": "{n} dagen te laat"},
    S.DUE_LINE: "Vervaldatum: {date} ({relative})",
    S.DUE_SHORT_TODAY: "vandaag",
    S.DUE_SHORT_TOMORROW: "morgen",
    S.DUE_SHORT_WEEKDAY: "{weekday}",
    S.DUE_SHORT_DATE: "{date}",
    S.ENDED_ON: "Deze beoordeling is op {date} beëindigd.",
    S.REVIEW_TITLE: "Toegangsbeoordeling: {name}",
    S.REVIEW_RESOURCE: "Resource: {resource}",
    S.STAGE: "Fase {number} van {count}",
    S.PROGRESS: "{decided} van {total} beslist",
    S.PROGRESS_SAVING: {"one": "{n} wordt opgeslagen", "other": "{n} worden opgeslagen"},
    S.ALL_DONE: "Bedankt, er is niets meer te doen",
    S.ALL_DONE_DETAIL: "U hebt over elk item in deze beoordeling beslist.",
    S.REVIEW_ENDED: (
        "Deze beoordeling is beëindigd. Beslissingen kunnen niet meer worden gewijzigd."
    ),
    S.NO_ITEMS: "U hebt geen items in deze beoordeling.",
    S.INSTRUCTIONS: "Instructies: {text}",
    S.DEFAULT_NONE: (
        "Als niemand vóór de vervaldatum over een item beslist, blijft de toegang ongewijzigd."
    ),
    S.DEFAULT_APPROVE: (
        "Als niemand vóór de vervaldatum over een item beslist, wordt het goedgekeurd."
    ),
    S.DEFAULT_DENY: (
        "Als niemand vóór de vervaldatum over een item beslist, wordt het **geweigerd**."
    ),
    S.DEFAULT_RECOMMENDATION: (
        "Als niemand vóór de vervaldatum over een item beslist, wordt de aanbeveling toegepast."
    ),
    S.AUTO_APPLY_ON: "De resultaten worden automatisch toegepast wanneer de beoordeling eindigt.",
    S.AUTO_APPLY_OFF: (
        "De eigenaar van de beoordeling past de resultaten toe nadat de beoordeling is geëindigd."
    ),
    S.ENDED_DEFAULT_NONE: "Items zonder beslissing behouden hun toegang.",
    S.ENDED_DEFAULT_APPROVE: "Items zonder beslissing zijn goedgekeurd.",
    S.ENDED_DEFAULT_DENY: "Items zonder beslissing zijn geweigerd.",
    S.ENDED_DEFAULT_RECOMMENDATION: "Voor items zonder beslissing is de aanbeveling toegepast.",
    S.JUSTIFICATION_LABEL: "Reden (verplicht bij elke beslissing)",
    S.JUSTIFICATION_PLACEHOLDER: "Waarom moet deze toegang blijven of verdwijnen?",
    S.JUSTIFICATION_ERROR: "Voor deze beoordeling is een reden verplicht.",
    S.PAGE_INFO: "Pagina {page} · items {first}–{last} van {total}",
    S.PREVIOUS: "Vorige",
    S.NEXT: "Volgende",
    S.ACCEPT_RECOMMENDATIONS: "Aanbevelingen accepteren",
    S.RECOMMENDATION_COUNTS: "Aanbevelingen: {approve} goedkeuren, {deny} weigeren",
    S.OPEN_MY_ACCESS: "Mijn toegang openen",
    S.BULK_HINT: "Of selecteer hierboven meerdere items en beslis ze in één keer:",
    S.SELECT: "Selecteren",
    S.FALLBACK: "Toegangsbeoordeling ‘{name}’: {decided} van {total} beslist.",
    S.GUEST: "Gast",
    S.MEMBER: "Lid",
    S.APPLICATION: "Toepassing",
    S.APP_ID: "App-id {app_id}",
    S.ON_RESOURCE: "Toegang tot {resource}",
    S.RECOMMENDATION_LINE: "Aanbeveling: {recommendation}",
    S.RECOMMENDATION_WITH_REASON: "Aanbeveling: {recommendation} — {reason}",
    S.RECOMMEND_APPROVE: "**goedkeuren**",
    S.RECOMMEND_DENY: "**weigeren**",
    S.NO_RECOMMENDATION: "Geen aanbeveling",
    S.REASON_NO_RECENT_SIGN_IN: {
        "one": "al {n} dag niet aangemeld",
        "other": "al {n} dagen niet aangemeld",
    },
    S.REASON_NEVER_SIGNED_IN: "nooit aangemeld",
    S.REASON_RECENT_SIGN_IN: "aangemeld {ago}",
    S.REASON_SIGNED_IN_TODAY: "vandaag aangemeld",
    S.REASON_PEER_OUTLIER: "toegang wijkt af van die van collega's",
    S.REASON_ACCOUNT_DISABLED: "account uitgeschakeld",
    S.LAST_SIGN_IN: "Laatste aanmelding: {when}",
    S.LAST_SIGN_IN_NEVER: "Laatste aanmelding: nooit",
    S.APPROVE: "Goedkeuren",
    S.DENY: "Weigeren",
    S.DONT_KNOW: "Weet ik niet",
    S.DECIDED_APPROVE: "✓ Goedgekeurd door {who}",
    S.DECIDED_DENY: "✗ Geweigerd door {who}",
    S.DECIDED_DONT_KNOW: "? Weet ik niet — door {who}",
    S.DECIDED_BY_YOU: "u",
    S.DECIDED_BY_UNKNOWN: "een andere revisor",
    S.WITH_TIME: "{text} · {when}",
    S.NOT_DECIDED: "Niet beslist",
    S.DECISION_REASON: "Reden: {text}",
    S.SAVING_ITEM: "Opslaan… ({decision})",
    S.FAILED_ITEM: "Niet opgeslagen: {message}",
    S.EARLIER_APPROVE: "Fase {stage}: goedgekeurd door {who}",
    S.EARLIER_DENY: "Fase {stage}: geweigerd door {who}",
    S.EARLIER_DONT_KNOW: "Fase {stage}: weet ik niet — door {who}",
    S.EARLIER_NOT_REVIEWED: "Fase {stage}: niet beoordeeld",
    S.EARLIER_REASON: "‘{text}’",
    S.DECISION_NAME_APPROVE: "goedkeuren",
    S.DECISION_NAME_DENY: "weigeren",
    S.DECISION_NAME_DONT_KNOW: "weet ik niet",
    S.PREVIEW_TITLE: "Aanbevelingen voor {name} accepteren?",
    S.PREVIEW_DENY_INTRO: {
        "one": "**{n} persoon of app wordt geweigerd** en verliest de toegang:",
        "other": "**{n} personen of apps worden geweigerd** en verliezen de toegang:",
    },
    S.PREVIEW_NO_DENY: "Niemand wordt geweigerd.",
    S.PREVIEW_APPROVE_COUNT: {
        "one": "{n} item wordt goedgekeurd.",
        "other": "{n} items worden goedgekeurd.",
    },
    S.PREVIEW_UNCHANGED_COUNT: {
        "one": "{n} item heeft geen aanbeveling en blijft onbeslist.",
        "other": "{n} items hebben geen aanbeveling en blijven onbeslist.",
    },
    S.PREVIEW_MORE: {"one": "…en nog {n}", "other": "…en nog {n}"},
    S.PREVIEW_CONFIRM: "Aanbevelingen accepteren",
    S.PREVIEW_CANCEL: "Annuleren",
    S.PREVIEW_NOTHING: "Er zijn geen aanbevelingen meer om te accepteren.",
    S.REMINDER_TITLE: "Herinnering: {name}",
    S.REMINDER_LEFT: "Nog {left} van {total} open, uiterlijk {due}",
    S.SNOOZE_TOMORROW: "Uitstellen tot morgen",
    S.SNOOZE_4H: "4 uur uitstellen",
    S.ESCALATION_TITLE: "Een toegangsbeoordeling vraagt aandacht",
    S.ESCALATION_LINE: {
        "one": "**{who}** heeft nog {n} openstaande beslissing, uiterlijk {due}",
        "other": "**{who}** heeft nog {n} openstaande beslissingen, uiterlijk {due}",
    },
    S.ESCALATION_REVIEW: "Beoordeling: {name}",
    S.ESCALATION_PROGRESS: "Tot nu toe {decided} van {total} beslist",
    S.ESCALATION_DUE: "Vervaldatum: {date} ({relative})",
    S.NUDGE: "Herinneren",
    S.NUDGED_AT: "Herinnering verstuurd naar {who} · {when}",
    S.UNKNOWN_REVIEWER: "Een revisor",
    S.PENDING_TITLE: "Uw openstaande toegangsbeoordelingen",
    S.PENDING_NONE: "U hebt geen openstaande toegangsbeoordelingen.",
    S.PENDING_LINE: "Nog {pending} van {total} open · uiterlijk {due}",
    S.PENDING_OPEN: "Openen",
    S.PENDING_MORE: {
        "one": "…en nog {n} beoordeling. Open Mijn toegang om alles te zien.",
        "other": "…en nog {n} beoordelingen. Open Mijn toegang om alles te zien.",
    },
    S.HELP_TITLE: "Wat ik voor u kan doen",
    S.HELP_INTRO: (
        "Ik stuur u de toegangsbeoordelingen waarover u moet beslissen, herinner u eraan vóór "
        "de vervaldatum en leg uw beslissingen namens u vast in Microsoft Entra ID."
    ),
    S.HELP_PENDING: "**openstaand** — uw openstaande toegangsbeoordelingen weergeven",
    S.HELP_SNOOZE: "**uitstellen** — herinneringen pauzeren tot uw volgende werkdag",
    S.HELP_HELP: "**help** — dit bericht weergeven",
    S.HELP_CARDS: (
        "Kies op een beoordelingskaart per item Goedkeuren, Weigeren of Weet ik niet, selecteer "
        "meerdere items en beslis ze in één keer, of accepteer de aanbevelingen nadat u hebt "
        "gecontroleerd wie wordt geweigerd."
    ),
    S.SIGNIN_TITLE: "Aanmelden vereist",
    S.SIGNIN_SIGN_IN_REQUIRED: (
        "Om beslissingen namens u vast te leggen, moet u zich één keer aanmelden bij "
        "Microsoft Entra ID."
    ),
    S.SIGNIN_CONSENT_REQUIRED: (
        "Om beslissingen namens u vast te leggen, heeft deze app uw toestemming nodig om "
        "namens u toegangsbeoordelingen te verwerken."
    ),
    S.SIGNIN_MFA_REQUIRED: (
        "Uw organisatie vraagt u uw identiteit te verifiëren (meervoudige verificatie) "
        "voordat beslissingen kunnen worden vastgelegd."
    ),
    S.SIGNIN_BUTTON: "Aanmelden",
    S.SIGNIN_DONE: "Ik ben aangemeld — opnieuw proberen",
    S.SIGNIN_NOTE: "Uw beslissing is nog niet vastgelegd.",
    S.MSG_NOT_A_REVIEWER: "U bent geen revisor meer van dit item.",
    S.MSG_ALREADY_DECIDED: "Over dit item heeft {detail} al beslist.",
    S.MSG_REVIEW_ENDED: (
        "Deze beoordeling is beëindigd. Beslissingen kunnen niet meer worden gewijzigd."
    ),
    S.MSG_DECISION_SAVED: "Uw beslissing is opgeslagen.",
    S.MSG_DECISION_FAILED: "Uw beslissing kon niet worden opgeslagen. Probeer het opnieuw.",
    S.MSG_SAVING: (
        "Uw beslissingen worden opgeslagen… Deze kaart wordt bijgewerkt zodra ze zijn vastgelegd."
    ),
    S.MSG_JUSTIFICATION_REQUIRED: (
        "Voor deze beoordeling is bij elke beslissing een reden verplicht."
    ),
    S.MSG_NOTHING_SELECTED: "Selecteer eerst ten minste één item.",
    S.MSG_THROTTLED: "Microsoft Entra ID is bezet. Probeer het over een minuut opnieuw.",
    S.MSG_SNOOZED: "Oké, ik herinner u er weer aan: {at}.",
    S.MSG_NUDGE_SENT: "Herinnering verstuurd naar {detail}.",
    S.MSG_RECOMMENDATIONS_ACCEPTED: "Aanbevelingen geaccepteerd.",
    S.MSG_NO_PENDING_REVIEWS: "U hebt geen openstaande toegangsbeoordelingen.",
    S.MSG_UNKNOWN_COMMAND: "Sorry, dat begreep ik niet. Typ **help** om te zien wat ik kan doen.",
    S.MSG_FORBIDDEN: "U hebt geen toestemming om dat te doen.",
    S.MSG_GENERIC_ERROR: "Er is aan onze kant iets misgegaan. Probeer het later opnieuw.",
    S.MESSAGE_TITLE_INFO: "Toegangsbeoordelingen",
    S.MESSAGE_TITLE_SUCCESS: "Gereed",
    S.MESSAGE_TITLE_WARNING: "Controleer dit",
    S.MESSAGE_TITLE_ERROR: "Er is iets misgegaan",
    S.BACK_TO_REVIEW: "Terug naar de beoordeling",
    S.BACK_TO_LIST: "Terug naar mijn beoordelingen",
    S.SUMMARY_REVIEW: "Toegangsbeoordeling: {name}",
    S.SUMMARY_REMINDER: "Herinnering: {name}",
    S.SUMMARY_PENDING: "Uw openstaande toegangsbeoordelingen",
    S.SUMMARY_ESCALATION: "Een toegangsbeoordeling vraagt aandacht",
    S.COMMAND_PENDING: "openstaand",
    S.COMMAND_HELP: "help",
    S.COMMAND_SNOOZE: "uitstellen",
    S.COMMAND_TOMORROW: "morgen",
    S.CHAT_WELCOME: (
        "Hallo, ik ben Access Review Bot. Als een toegangsbeoordeling uw beslissing nodig heeft, "
        "stuur ik die hierheen, zodat u met één klik kunt goedkeuren of weigeren. Typ **help** "
        "om te zien wat ik kan doen."
    ),
    S.CHAT_HELP: (
        "Ik help u uw Microsoft Entra-toegangsbeoordelingen af te ronden zonder Teams te "
        "verlaten.\n\n"
        "- **openstaand**: uw openstaande beoordelingen en wat er in elk nog te doen is\n"
        "- **uitstellen 4h** of **uitstellen morgen**: een tijdje minder herinneringen\n"
        "- **help**: dit bericht\n\n"
        "Als een beoordeling u nodig heeft, stuur ik u een kaart: goedkeuren, weigeren of "
        "‘Weet ik niet’, met één klik."
    ),
    S.CHAT_NOT_UNDERSTOOD: "Dat begreep ik niet.",
    S.CHAT_WHO_ARE_YOU: (
        "Ik kon niet vaststellen wie u bent, dus ik kan uw beoordelingen niet weergeven."
    ),
    S.CHAT_SNOOZE_UNAVAILABLE: (
        "Herinneringen zijn hier niet actief, dus er valt niets uit te stellen."
    ),
    S.CHAT_SNOOZE_NOTHING_OPEN: (
        "U hebt geen openstaande beoordelingen, dus ook geen herinneringen om uit te stellen."
    ),
    S.CHAT_SNOOZE_USAGE: "Probeer **uitstellen 4h** of **uitstellen morgen**.",
    S.CHAT_SNOOZE_NOTHING: "Er valt nu niets uit te stellen.",
    S.CHAT_SNOOZED_UNTIL: (
        "Herinneringen uitgesteld tot: {until} (nooit voorbij de laatste herinnering vóór een "
        "vervaldatum)."
    ),
    S.CHAT_TURN_ERROR: "Sorry, er is aan mijn kant iets misgegaan. Probeer het opnieuw.",
    S.ERROR_UNSUPPORTED_BUTTON: "Deze knop wordt niet ondersteund.",
    S.ERROR_MALFORMED_CARD: (
        "Deze kaart stuurde gegevens die ik niet kan lezen. Open de beoordeling opnieuw."
    ),
    S.ERROR_NOT_READY: "De bot wordt gestart. Probeer het zo opnieuw.",
    S.ERROR_BUSY: "De bot is bezet en kon uw klik niet bevestigen. Probeer het zo opnieuw.",
    S.ERROR_UNIDENTIFIED: "Uw account kon niet worden herkend.",
    S.ERROR_SSO_NOT_CONFIGURED: "Eenmalige aanmelding is niet geconfigureerd.",
    S.ERROR_CONSENT_NEEDED: "Uw toestemming is nodig voordat de bot namens u kan handelen.",
    S.ERROR_SIGN_IN_TO_TEAMS: "Meld u aan bij Teams en probeer het opnieuw.",
    S.LOGIN_PROMPT: "Meld u aan zodat uw beslissing namens u wordt vastgelegd.",
    S.MSG_JUSTIFICATION_TOO_LONG: "Die reden is te lang: een reden mag maximaal {detail} tekens bevatten. Maak deze korter en probeer het opnieuw.",
    S.MSG_NUDGE_NOT_RECIPIENT: "U kunt alleen een revisor herinneren van wie de escalatie naar u is verzonden. Er is niets verzonden.",
    S.REVIEW_APPLIED: "Deze beoordeling is beëindigd en de resultaten zijn toegepast.",
    S.REVIEW_APPLYING: "Deze beoordeling is beëindigd en de resultaten worden toegepast.",
    S.REVIEW_AUTO_REVIEWED: "Deze beoordeling is beëindigd. Over de items waarover niemand heeft beslist, is automatisch beslist.",
    S.REVIEW_AUTO_REVIEWING: "Deze beoordeling is beëindigd en over de open items wordt automatisch beslist; er zijn geen beslissingen meer mogelijk.",
    S.REVIEW_COMPLETING: "Deze beoordeling wordt voltooid; er zijn geen beslissingen meer mogelijk.",
    S.REVIEW_NOT_OPEN: "Deze beoordeling staat niet open voor beslissingen.",
    S.REVIEW_NOT_STARTED: "Deze beoordeling is nog niet begonnen. U kunt beslissen zodra ze begint.",
    S.REVIEW_STARTING: "Deze beoordeling wordt gestart. U kunt over enkele minuten beslissen.",
    S.STATUS_APPLIED: "Toegepast",
    S.STATUS_APPLYING: "Resultaten worden toegepast",
    S.STATUS_AUTO_REVIEWED: "Automatisch beslist",
    S.STATUS_AUTO_REVIEWING: "Wordt automatisch beslist; geen beslissingen meer",
    S.STATUS_COMPLETED: "Voltooid",
    S.STATUS_COMPLETING: "Wordt voltooid; geen beslissingen meer",
    S.STATUS_DELETED: "Verwijderd",
    S.STATUS_IN_PROGRESS: "Wordt uitgevoerd",
    S.STATUS_NOT_OPEN: "Niet open voor beslissingen ({status})",
    S.STATUS_NOT_STARTED: "Niet gestart",
    S.STATUS_STARTING: "Wordt gestart",
}
