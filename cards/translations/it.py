"""Italian (it): "tu", as Teams speaks Italian; Microsoft's terms: verifica di accesso, revisore,
raccomandazione, Approva / Nega / Non so, Accesso personale."""

from __future__ import annotations

from collections.abc import Mapping

from cards.strings import S

TABLE: Mapping[str, str | Mapping[str, str]] = {
    S.DUE_TODAY: "oggi",
    S.DUE_TOMORROW: "domani",
    S.DUE_OVERDUE: {"one": "scaduta da {n} giorno", "other": "scaduta da {n} giorni"},
    S.DUE_LINE: "Scadenza: {date} ({relative})",
    S.DUE_SHORT_TODAY: "oggi",
    S.DUE_SHORT_TOMORROW: "domani",
    S.DUE_SHORT_WEEKDAY: "{weekday}",
    S.DUE_SHORT_DATE: "il {date}",
    S.ENDED_ON: "Questa verifica è terminata il {date}.",
    S.REVIEW_TITLE: "Verifica di accesso: {name}",
    S.REVIEW_RESOURCE: "Risorsa: {resource}",
    S.STAGE: "Fase {number} di {count}",
    S.PROGRESS: "Decisi: {decided} su {total}",
    S.PROGRESS_SAVING: {"one": "{n} in salvataggio", "other": "{n} in salvataggio"},
    S.ALL_DONE: "Grazie, non resta nulla",
    S.ALL_DONE_DETAIL: "Hai deciso tutti gli elementi di questa verifica.",
    S.REVIEW_ENDED: (
        "Questa verifica è terminata. Le decisioni non possono più essere modificate."
    ),
    S.NO_ITEMS: "Non hai elementi in questa verifica.",
    S.INSTRUCTIONS: "Istruzioni: {text}",
    S.DEFAULT_NONE: ("Se nessuno decide un elemento entro la scadenza, l'accesso resta invariato."),
    S.DEFAULT_APPROVE: "Se nessuno decide un elemento entro la scadenza, viene approvato.",
    S.DEFAULT_DENY: "Se nessuno decide un elemento entro la scadenza, viene **negato**.",
    S.DEFAULT_RECOMMENDATION: (
        "Se nessuno decide un elemento entro la scadenza, viene applicata la sua raccomandazione."
    ),
    S.AUTO_APPLY_ON: "I risultati vengono applicati automaticamente al termine della verifica.",
    S.AUTO_APPLY_OFF: (
        "I risultati vengono applicati dal proprietario della verifica al suo termine."
    ),
    S.ENDED_DEFAULT_NONE: "Gli elementi senza decisione mantengono l'accesso.",
    S.ENDED_DEFAULT_APPROVE: "Gli elementi senza decisione sono stati approvati.",
    S.ENDED_DEFAULT_DENY: "Gli elementi senza decisione sono stati negati.",
    S.ENDED_DEFAULT_RECOMMENDATION: (
        "Agli elementi senza decisione è stata applicata la raccomandazione."
    ),
    S.JUSTIFICATION_LABEL: "Motivazione (obbligatoria per ogni decisione)",
    S.JUSTIFICATION_PLACEHOLDER: "Perché questo accesso deve restare o essere rimosso?",
    S.JUSTIFICATION_ERROR: "Questa verifica richiede una motivazione.",
    S.PAGE_INFO: "Pagina {page} · elementi {first}–{last} di {total}",
    S.PREVIOUS: "Precedente",
    S.NEXT: "Successiva",
    S.ACCEPT_RECOMMENDATIONS: "Accetta le raccomandazioni",
    S.RECOMMENDATION_COUNTS: "Raccomandazioni: {approve} da approvare, {deny} da negare",
    S.OPEN_MY_ACCESS: "Apri Accesso personale",
    S.BULK_HINT: "Oppure seleziona più elementi qui sopra e decidili insieme:",
    S.SELECT: "Seleziona",
    S.FALLBACK: "Verifica di accesso «{name}»: decisi {decided} su {total}.",
    S.GUEST: "Guest",
    S.MEMBER: "Membro",
    S.APPLICATION: "Applicazione",
    S.APP_ID: "ID applicazione {app_id}",
    S.ON_RESOURCE: "Accesso a {resource}",
    S.RECOMMENDATION_LINE: "Raccomandazione: {recommendation}",
    S.RECOMMENDATION_WITH_REASON: "Raccomandazione: {recommendation} — {reason}",
    S.RECOMMEND_APPROVE: "**approvare**",
    S.RECOMMEND_DENY: "**negare**",
    S.NO_RECOMMENDATION: "Nessuna raccomandazione",
    S.REASON_NO_RECENT_SIGN_IN: {
        "one": "nessun accesso da {n} giorno",
        "other": "nessun accesso da {n} giorni",
    },
    S.REASON_NEVER_SIGNED_IN: "mai eseguito l'accesso",
    S.REASON_RECENT_SIGN_IN: "ultimo accesso {ago}",
    S.REASON_SIGNED_IN_TODAY: "accesso eseguito oggi",
    S.REASON_PEER_OUTLIER: "accesso diverso da quello dei colleghi",
    S.REASON_ACCOUNT_DISABLED: "account disabilitato",
    S.LAST_SIGN_IN: "Ultimo accesso: {when}",
    S.LAST_SIGN_IN_NEVER: "Ultimo accesso: mai",
    S.APPROVE: "Approva",
    S.DENY: "Nega",
    S.DONT_KNOW: "Non so",
    S.DECIDED_APPROVE: "✓ Approvato da {who}",
    S.DECIDED_DENY: "✗ Negato da {who}",
    S.DECIDED_DONT_KNOW: "? Non so — da {who}",
    S.DECIDED_BY_YOU: "te",
    S.DECIDED_BY_UNKNOWN: "un altro revisore",
    S.WITH_TIME: "{text} · {when}",
    S.NOT_DECIDED: "Non deciso",
    S.DECISION_REASON: "Motivazione: {text}",
    S.SAVING_ITEM: "Salvataggio… ({decision})",
    S.FAILED_ITEM: "Non salvato: {message}",
    S.EARLIER_APPROVE: "Fase {stage}: approvato da {who}",
    S.EARLIER_DENY: "Fase {stage}: negato da {who}",
    S.EARLIER_DONT_KNOW: "Fase {stage}: non so — da {who}",
    S.EARLIER_NOT_REVIEWED: "Fase {stage}: non verificato",
    S.EARLIER_REASON: "«{text}»",
    S.DECISION_NAME_APPROVE: "approva",
    S.DECISION_NAME_DENY: "nega",
    S.DECISION_NAME_DONT_KNOW: "non so",
    S.PREVIEW_TITLE: "Accettare le raccomandazioni per {name}?",
    S.PREVIEW_DENY_INTRO: {
        "one": "**L'accesso verrà negato a {n} persona o app**, che lo perderà:",
        "other": "**L'accesso verrà negato a {n} persone o app**, che lo perderanno:",
    },
    S.PREVIEW_NO_DENY: "L'accesso non verrà negato a nessuno.",
    S.PREVIEW_APPROVE_COUNT: {
        "one": "{n} elemento verrà approvato.",
        "other": "{n} elementi verranno approvati.",
    },
    S.PREVIEW_UNCHANGED_COUNT: {
        "one": "{n} elemento non ha raccomandazioni e resta senza decisione.",
        "other": "{n} elementi non hanno raccomandazioni e restano senza decisione.",
    },
    S.PREVIEW_MORE: {"one": "…e {n} altro", "other": "…e altri {n}"},
    S.PREVIEW_CONFIRM: "Accetta le raccomandazioni",
    S.PREVIEW_CANCEL: "Annulla",
    S.PREVIEW_NOTHING: "Non ci sono più raccomandazioni da accettare.",
    S.REMINDER_TITLE: "Promemoria: {name}",
    S.REMINDER_LEFT: "Ancora {left} su {total} da decidere, scade {due}",
    S.SNOOZE_TOMORROW: "Posticipa a domani",
    S.SNOOZE_4H: "Posticipa di 4 ore",
    S.ESCALATION_TITLE: "Una verifica di accesso richiede attenzione",
    S.ESCALATION_LINE: {
        "one": "**{who}** ha ancora {n} decisione da prendere, scade {due}",
        "other": "**{who}** ha ancora {n} decisioni da prendere, scade {due}",
    },
    S.ESCALATION_REVIEW: "Verifica: {name}",
    S.ESCALATION_PROGRESS: "Decisi finora: {decided} su {total}",
    S.ESCALATION_DUE: "Scadenza: {date} ({relative})",
    S.NUDGE: "Sollecita",
    S.NUDGED_AT: "Sollecito inviato a {who} · {when}",
    S.UNKNOWN_REVIEWER: "Un revisore",
    S.PENDING_TITLE: "Le tue verifiche di accesso in sospeso",
    S.PENDING_NONE: "Non hai verifiche di accesso in sospeso.",
    S.PENDING_LINE: "Ancora {pending} su {total} · scade {due}",
    S.PENDING_OPEN: "Apri",
    S.PENDING_MORE: {
        "one": "…e {n} altra verifica. Apri Accesso personale per vederle tutte.",
        "other": "…e altre {n} verifiche. Apri Accesso personale per vederle tutte.",
    },
    S.HELP_TITLE: "Cosa posso fare",
    S.HELP_INTRO: (
        "Ti invio le verifiche di accesso su cui devi decidere, te le ricordo prima della "
        "scadenza e registro le tue decisioni in Microsoft Entra ID a tuo nome."
    ),
    S.HELP_PENDING: "**in sospeso** — elenca le tue verifiche di accesso in sospeso",
    S.HELP_SNOOZE: "**posticipa** — sospende i promemoria fino al prossimo giorno lavorativo",
    S.HELP_HELP: "**aiuto** — mostra questo messaggio",
    S.HELP_CARDS: (
        "In una scheda di verifica scegli Approva, Nega o Non so per ogni elemento, selezionane "
        "più di uno e decidili insieme, oppure accetta le raccomandazioni dopo aver controllato "
        "a chi verrà negato l'accesso."
    ),
    S.SIGNIN_TITLE: "Accesso necessario",
    S.SIGNIN_SIGN_IN_REQUIRED: (
        "Per registrare le decisioni a tuo nome, devi accedere una volta a Microsoft Entra ID."
    ),
    S.SIGNIN_CONSENT_REQUIRED: (
        "Per registrare le decisioni a tuo nome, questa app ha bisogno del tuo consenso ad "
        "agire per conto tuo sulle verifiche di accesso."
    ),
    S.SIGNIN_MFA_REQUIRED: (
        "La tua organizzazione richiede di verificare la tua identità (autenticazione a più "
        "fattori) prima di poter registrare le decisioni."
    ),
    S.SIGNIN_BUTTON: "Accedi",
    S.SIGNIN_DONE: "Ho eseguito l'accesso — riprova",
    S.SIGNIN_NOTE: "La tua decisione non è ancora stata registrata.",
    S.MSG_NOT_A_REVIEWER: "Non sei più revisore di questo elemento.",
    S.MSG_ALREADY_DECIDED: "Su questo elemento ha già deciso {detail}.",
    S.MSG_REVIEW_ENDED: (
        "Questa verifica è terminata. Le decisioni non possono più essere modificate."
    ),
    S.MSG_DECISION_SAVED: "La tua decisione è stata salvata.",
    S.MSG_DECISION_FAILED: "Non è stato possibile salvare la tua decisione. Riprova.",
    S.MSG_SAVING: (
        "Salvataggio delle decisioni in corso… Questa scheda si aggiorna quando sono registrate."
    ),
    S.MSG_JUSTIFICATION_REQUIRED: "Questa verifica richiede una motivazione per ogni decisione.",
    S.MSG_NOTHING_SELECTED: "Seleziona prima almeno un elemento.",
    S.MSG_THROTTLED: "Microsoft Entra ID è occupato. Riprova tra un minuto.",
    S.MSG_SNOOZED: "OK, te lo ricorderò di nuovo: {at}.",
    S.MSG_NUDGE_SENT: "Promemoria inviato a {detail}.",
    S.MSG_RECOMMENDATIONS_ACCEPTED: "Raccomandazioni accettate.",
    S.MSG_NO_PENDING_REVIEWS: "Non hai verifiche di accesso in sospeso.",
    S.MSG_UNKNOWN_COMMAND: "Non ho capito. Scrivi **aiuto** per vedere cosa posso fare.",
    S.MSG_FORBIDDEN: "Non hai l'autorizzazione per farlo.",
    S.MSG_GENERIC_ERROR: "Si è verificato un problema da parte nostra. Riprova più tardi.",
    S.MESSAGE_TITLE_INFO: "Verifiche di accesso",
    S.MESSAGE_TITLE_SUCCESS: "Fatto",
    S.MESSAGE_TITLE_WARNING: "Controlla",
    S.MESSAGE_TITLE_ERROR: "Si è verificato un problema",
    S.BACK_TO_REVIEW: "Torna alla verifica",
    S.BACK_TO_LIST: "Torna alle mie verifiche",
    S.SUMMARY_REVIEW: "Verifica di accesso: {name}",
    S.SUMMARY_REMINDER: "Promemoria: {name}",
    S.SUMMARY_PENDING: "Le tue verifiche di accesso in sospeso",
    S.SUMMARY_ESCALATION: "Una verifica di accesso richiede attenzione",
    S.COMMAND_PENDING: "in sospeso",
    S.COMMAND_HELP: "aiuto",
    S.COMMAND_SNOOZE: "posticipa",
    S.COMMAND_TOMORROW: "domani",
    S.CHAT_WELCOME: (
        "Ciao, sono Access Review Bot. Quando una verifica di accesso richiede una tua "
        "decisione, te la invio qui: approvi o neghi con un clic. Scrivi **aiuto** per vedere "
        "cosa posso fare."
    ),
    S.CHAT_HELP: (
        "Ti aiuto a completare le verifiche di accesso di Microsoft Entra senza uscire da "
        "Teams.\n\n"
        "- **in sospeso**: le tue verifiche in sospeso e quanto manca in ciascuna\n"
        "- **posticipa 4h** o **posticipa domani**: meno promemoria per un po'\n"
        "- **aiuto**: questo messaggio\n\n"
        "Quando una verifica ha bisogno di te, ti invio una scheda: approva, nega o «Non so», "
        "con un solo clic."
    ),
    S.CHAT_NOT_UNDERSTOOD: "Non ho capito.",
    S.CHAT_WHO_ARE_YOU: (
        "Non sono riuscito a identificarti, quindi non posso elencare le tue verifiche."
    ),
    S.CHAT_SNOOZE_UNAVAILABLE: (
        "Qui i promemoria non sono attivi, quindi non c'è niente da posticipare."
    ),
    S.CHAT_SNOOZE_NOTHING_OPEN: (
        "Non hai verifiche in sospeso, quindi nessun promemoria da posticipare."
    ),
    S.CHAT_SNOOZE_USAGE: "Prova **posticipa 4h** o **posticipa domani**.",
    S.CHAT_SNOOZE_NOTHING: "Al momento non c'è niente da posticipare.",
    S.CHAT_SNOOZED_UNTIL: (
        "Promemoria posticipati fino a: {until} (mai oltre l'ultimo promemoria prima di una "
        "scadenza)."
    ),
    S.CHAT_TURN_ERROR: "Si è verificato un problema da parte mia. Riprova.",
    S.ERROR_UNSUPPORTED_BUTTON: "Questo pulsante non è supportato.",
    S.ERROR_MALFORMED_CARD: (
        "Questa scheda ha inviato dati che non riesco a leggere. Riapri la verifica."
    ),
    S.ERROR_NOT_READY: "Il bot si sta avviando. Riprova tra un momento.",
    S.ERROR_BUSY: "Il bot è occupato e non ha potuto confermare il clic. Riprova tra un momento.",
    S.ERROR_UNIDENTIFIED: "Non è stato possibile identificare il tuo account.",
    S.ERROR_SSO_NOT_CONFIGURED: "L'accesso Single Sign-On non è configurato.",
    S.ERROR_CONSENT_NEEDED: ("Serve il tuo consenso perché il bot possa agire per conto tuo."),
    S.ERROR_SIGN_IN_TO_TEAMS: "Accedi a Teams e riprova.",
    S.LOGIN_PROMPT: "Accedi per registrare la decisione a tuo nome.",
    S.MSG_JUSTIFICATION_TOO_LONG: "La motivazione è troppo lunga: può contenere al massimo {detail} caratteri. Accorciala e riprova.",
    S.MSG_NUDGE_NOT_RECIPIENT: "Puoi sollecitare solo un revisore la cui escalation è stata inviata a te. Non è stato inviato nulla.",
    S.REVIEW_APPLIED: "Questa verifica è terminata e i risultati sono stati applicati.",
    S.REVIEW_APPLYING: "Questa verifica è terminata e i risultati sono in fase di applicazione.",
    S.REVIEW_AUTO_REVIEWED: "Questa verifica è terminata. Gli elementi su cui nessuno ha deciso sono stati decisi automaticamente.",
    S.REVIEW_AUTO_REVIEWING: "Questa verifica è terminata e gli elementi senza decisione vengono decisi automaticamente: non si accettano altre decisioni.",
    S.REVIEW_COMPLETING: "Questa verifica è in fase di completamento: non si accettano altre decisioni.",
    S.REVIEW_NOT_OPEN: "Questa verifica non è aperta alle decisioni.",
    S.REVIEW_NOT_STARTED: "Questa verifica non è ancora iniziata. Potrai decidere quando inizierà.",
    S.REVIEW_STARTING: "Questa verifica sta per iniziare. Potrai decidere tra pochi minuti.",
    S.STATUS_APPLIED: "Applicata",
    S.STATUS_APPLYING: "Applicazione dei risultati",
    S.STATUS_AUTO_REVIEWED: "Decisa automaticamente",
    S.STATUS_AUTO_REVIEWING: "Decisione automatica in corso: nessuna altra decisione",
    S.STATUS_COMPLETED: "Completata",
    S.STATUS_COMPLETING: "Completamento in corso: nessuna altra decisione",
    S.STATUS_DELETED: "Eliminata",
    S.STATUS_IN_PROGRESS: "In corso",
    S.STATUS_NOT_OPEN: "Non aperta alle decisioni ({status})",
    S.STATUS_NOT_STARTED: "Non iniziata",
    S.STATUS_STARTING: "Avvio in corso",
}
