"""Portuguese (Brazil, pt-BR): "você", Microsoft's terms: revisão de acesso, revisor, recomendação,
Aprovar / Negar / Não sei, Meus Acessos. Portuguese readers elsewhere get this table too (with
their own dates): see :mod:`cards.i18n`."""

from __future__ import annotations

from collections.abc import Mapping

from cards.strings import S

TABLE: Mapping[str, str | Mapping[str, str]] = {
    S.DUE_TODAY: "hoje",
    S.DUE_TOMORROW: "amanhã",
    S.DUE_OVERDUE: {"one": "atrasada há {n} dia", "other": "atrasada há {n} dias"},
    S.DUE_LINE: "Vence em {date} ({relative})",
    S.DUE_SHORT_TODAY: "hoje",
    S.DUE_SHORT_TOMORROW: "amanhã",
    S.DUE_SHORT_WEEKDAY: "{weekday}",
    S.DUE_SHORT_DATE: "em {date}",
    S.ENDED_ON: "Esta revisão terminou em {date}.",
    S.REVIEW_TITLE: "Revisão de acesso: {name}",
    S.REVIEW_RESOURCE: "Recurso: {resource}",
    S.STAGE: "Etapa {number} de {count}",
    S.PROGRESS: "Decididos: {decided} de {total}",
    S.PROGRESS_SAVING: {"one": "{n} sendo salvo", "other": "{n} sendo salvos"},
    S.ALL_DONE: "Obrigado, não falta nada",
    S.ALL_DONE_DETAIL: "Você decidiu todos os itens desta revisão.",
    S.REVIEW_ENDED: "Esta revisão terminou. As decisões não podem mais ser alteradas.",
    S.NO_ITEMS: "Você não tem itens nesta revisão.",
    S.INSTRUCTIONS: "Instruções: {text}",
    S.DEFAULT_NONE: ("Se ninguém decidir um item até o vencimento, o acesso continua como está."),
    S.DEFAULT_APPROVE: "Se ninguém decidir um item até o vencimento, ele será aprovado.",
    S.DEFAULT_DENY: "Se ninguém decidir um item até o vencimento, ele será **negado**.",
    S.DEFAULT_RECOMMENDATION: (
        "Se ninguém decidir um item até o vencimento, a recomendação dele será aplicada."
    ),
    S.AUTO_APPLY_ON: "Os resultados são aplicados automaticamente quando a revisão termina.",
    S.AUTO_APPLY_OFF: (
        "Os resultados são aplicados pelo proprietário da revisão depois que ela termina."
    ),
    S.ENDED_DEFAULT_NONE: "Os itens sem decisão mantêm o acesso.",
    S.ENDED_DEFAULT_APPROVE: "Os itens sem decisão foram aprovados.",
    S.ENDED_DEFAULT_DENY: "Os itens sem decisão foram negados.",
    S.ENDED_DEFAULT_RECOMMENDATION: "Os itens sem decisão seguiram a recomendação.",
    S.JUSTIFICATION_LABEL: "Justificativa (obrigatória em cada decisão)",
    S.JUSTIFICATION_PLACEHOLDER: "Por que este acesso deve ser mantido ou removido?",
    S.JUSTIFICATION_ERROR: "Esta revisão exige uma justificativa.",
    S.PAGE_INFO: "Página {page} · itens {first}–{last} de {total}",
    S.PREVIOUS: "Anterior",
    S.NEXT: "Próxima",
    S.ACCEPT_RECOMMENDATIONS: "Aceitar recomendações",
    S.RECOMMENDATION_COUNTS: "Recomendações: {approve} para aprovar, {deny} para negar",
    S.OPEN_MY_ACCESS: "Abrir Meus Acessos",
    S.BULK_HINT: "Ou selecione vários itens acima e decida todos de uma vez:",
    S.SELECT: "Selecionar",
    S.FALLBACK: "Revisão de acesso “{name}”: decididos {decided} de {total}.",
    S.GUEST: "Convidado",
    S.MEMBER: "Membro",
    S.APPLICATION: "Aplicativo",
    S.APP_ID: "ID do aplicativo {app_id}",
    S.ON_RESOURCE: "Acesso a {resource}",
    S.RECOMMENDATION_LINE: "Recomendação: {recommendation}",
    S.RECOMMENDATION_WITH_REASON: "Recomendação: {recommendation} — {reason}",
    S.RECOMMEND_APPROVE: "**aprovar**",
    S.RECOMMEND_DENY: "**negar**",
    S.NO_RECOMMENDATION: "Sem recomendação",
    S.REASON_NO_RECENT_SIGN_IN: {
        "one": "sem entrar há {n} dia",
        "other": "sem entrar há {n} dias",
    },
    S.REASON_NEVER_SIGNED_IN: "nunca entrou",
    S.REASON_RECENT_SIGN_IN: "entrou {ago}",
    S.REASON_SIGNED_IN_TODAY: "entrou hoje",
    S.REASON_PEER_OUTLIER: "acesso diferente do dos colegas",
    S.REASON_ACCOUNT_DISABLED: "conta desabilitada",
    S.LAST_SIGN_IN: "Última entrada: {when}",
    S.LAST_SIGN_IN_NEVER: "Última entrada: nunca",
    S.APPROVE: "Aprovar",
    S.DENY: "Negar",
    S.DONT_KNOW: "Não sei",
    S.DECIDED_APPROVE: "✓ Aprovado por {who}",
    S.DECIDED_DENY: "✗ Negado por {who}",
    S.DECIDED_DONT_KNOW: "? Não sei — por {who}",
    S.DECIDED_BY_YOU: "você",
    S.DECIDED_BY_UNKNOWN: "outro revisor",
    S.WITH_TIME: "{text} · {when}",
    S.NOT_DECIDED: "Sem decisão",
    S.DECISION_REASON: "Justificativa: {text}",
    S.SAVING_ITEM: "Salvando… ({decision})",
    S.FAILED_ITEM: "Não salvo: {message}",
    S.EARLIER_APPROVE: "Etapa {stage}: aprovado por {who}",
    S.EARLIER_DENY: "Etapa {stage}: negado por {who}",
    S.EARLIER_DONT_KNOW: "Etapa {stage}: não sei — por {who}",
    S.EARLIER_NOT_REVIEWED: "Etapa {stage}: não revisado",
    S.EARLIER_REASON: "“{text}”",
    S.DECISION_NAME_APPROVE: "aprovar",
    S.DECISION_NAME_DENY: "negar",
    S.DECISION_NAME_DONT_KNOW: "não sei",
    S.PREVIEW_TITLE: "Aceitar as recomendações de {name}?",
    S.PREVIEW_DENY_INTRO: {
        "one": "**{n} pessoa ou aplicativo terá o acesso negado** e vai perdê-lo:",
        "other": "**{n} pessoas ou aplicativos terão o acesso negado** e vão perdê-lo:",
    },
    S.PREVIEW_NO_DENY: "Ninguém terá o acesso negado.",
    S.PREVIEW_APPROVE_COUNT: {
        "one": "{n} item será aprovado.",
        "other": "{n} itens serão aprovados.",
    },
    S.PREVIEW_UNCHANGED_COUNT: {
        "one": "{n} item não tem recomendação e continuará sem decisão.",
        "other": "{n} itens não têm recomendação e continuarão sem decisão.",
    },
    S.PREVIEW_MORE: {"one": "…e mais {n}", "other": "…e mais {n}"},
    S.PREVIEW_CONFIRM: "Aceitar recomendações",
    S.PREVIEW_CANCEL: "Cancelar",
    S.PREVIEW_NOTHING: "Não há mais recomendações para aceitar.",
    S.REMINDER_TITLE: "Lembrete: {name}",
    S.REMINDER_LEFT: "Pendentes: {left} de {total}; vence {due}",
    S.SNOOZE_TOMORROW: "Adiar até amanhã",
    S.SNOOZE_4H: "Adiar por 4 horas",
    S.ESCALATION_TITLE: "Uma revisão de acesso precisa de atenção",
    S.ESCALATION_LINE: {
        "one": "**{who}** tem {n} decisão pendente que vence {due}",
        "other": "**{who}** tem {n} decisões pendentes que vencem {due}",
    },
    S.ESCALATION_REVIEW: "Revisão: {name}",
    S.ESCALATION_PROGRESS: "Decididos até agora: {decided} de {total}",
    S.ESCALATION_DUE: "Vence em {date} ({relative})",
    S.NUDGE: "Lembrar",
    S.NUDGED_AT: "Lembrete enviado para {who} · {when}",
    S.UNKNOWN_REVIEWER: "Um revisor",
    S.PENDING_TITLE: "Suas revisões de acesso pendentes",
    S.PENDING_NONE: "Você não tem revisões de acesso pendentes.",
    S.PENDING_LINE: "Pendentes: {pending} de {total} · vence {due}",
    S.PENDING_OPEN: "Abrir",
    S.PENDING_MORE: {
        "one": "…e mais {n} revisão. Abra Meus Acessos para ver todas.",
        "other": "…e mais {n} revisões. Abra Meus Acessos para ver todas.",
    },
    S.HELP_TITLE: "O que posso fazer",
    S.HELP_INTRO: (
        "Envio as revisões de acesso que você precisa decidir, lembro você antes do vencimento "
        "e registro suas decisões no Microsoft Entra ID em seu nome."
    ),
    S.HELP_PENDING: "**pendentes** — ver suas revisões de acesso pendentes",
    S.HELP_SNOOZE: "**adiar** — pausar os lembretes até o seu próximo dia útil",
    S.HELP_HELP: "**ajuda** — mostrar esta mensagem",
    S.HELP_CARDS: (
        "Em um cartão de revisão, escolha Aprovar, Negar ou Não sei para cada item, selecione "
        "vários e decida todos juntos, ou aceite as recomendações depois de conferir quem terá "
        "o acesso negado."
    ),
    S.SIGNIN_TITLE: "É necessário entrar",
    S.SIGNIN_SIGN_IN_REQUIRED: (
        "Para registrar decisões em seu nome, preciso que você entre no Microsoft Entra ID uma vez."
    ),
    S.SIGNIN_CONSENT_REQUIRED: (
        "Para registrar decisões em seu nome, este aplicativo precisa do seu consentimento para "
        "agir nas revisões de acesso por você."
    ),
    S.SIGNIN_MFA_REQUIRED: (
        "Sua organização exige que você verifique sua identidade (autenticação multifator) "
        "antes que as decisões possam ser registradas."
    ),
    S.SIGNIN_BUTTON: "Entrar",
    S.SIGNIN_DONE: "Já entrei — tentar novamente",
    S.SIGNIN_NOTE: "Sua decisão ainda não foi registrada.",
    S.MSG_NOT_A_REVIEWER: "Você não é mais revisor deste item.",
    S.MSG_ALREADY_DECIDED: "Este item já foi decidido por {detail}.",
    S.MSG_REVIEW_ENDED: "Esta revisão terminou. As decisões não podem mais ser alteradas.",
    S.MSG_DECISION_SAVED: "Sua decisão foi salva.",
    S.MSG_DECISION_FAILED: "Não foi possível salvar sua decisão. Tente novamente.",
    S.MSG_SAVING: (
        "Salvando suas decisões… Este cartão será atualizado quando elas forem registradas."
    ),
    S.MSG_JUSTIFICATION_REQUIRED: "Esta revisão exige uma justificativa em cada decisão.",
    S.MSG_NOTHING_SELECTED: "Selecione pelo menos um item primeiro.",
    S.MSG_THROTTLED: "O Microsoft Entra ID está ocupado. Tente novamente em um minuto.",
    S.MSG_SNOOZED: "Certo, vou lembrar você de novo: {at}.",
    S.MSG_NUDGE_SENT: "Lembrete enviado para {detail}.",
    S.MSG_RECOMMENDATIONS_ACCEPTED: "Recomendações aceitas.",
    S.MSG_NO_PENDING_REVIEWS: "Você não tem revisões de acesso pendentes.",
    S.MSG_UNKNOWN_COMMAND: "Desculpe, não entendi. Digite **ajuda** para ver o que posso fazer.",
    S.MSG_FORBIDDEN: "Você não tem permissão para fazer isso.",
    S.MSG_GENERIC_ERROR: "Algo deu errado do nosso lado. Tente novamente mais tarde.",
    S.MESSAGE_TITLE_INFO: "Revisões de acesso",
    S.MESSAGE_TITLE_SUCCESS: "Pronto",
    S.MESSAGE_TITLE_WARNING: "Verifique",
    S.MESSAGE_TITLE_ERROR: "Algo deu errado",
    S.BACK_TO_REVIEW: "Voltar para a revisão",
    S.BACK_TO_LIST: "Voltar para minhas revisões",
    S.SUMMARY_REVIEW: "Revisão de acesso: {name}",
    S.SUMMARY_REMINDER: "Lembrete: {name}",
    S.SUMMARY_PENDING: "Suas revisões de acesso pendentes",
    S.SUMMARY_ESCALATION: "Uma revisão de acesso precisa de atenção",
    S.COMMAND_PENDING: "pendentes",
    S.COMMAND_HELP: "ajuda",
    S.COMMAND_SNOOZE: "adiar",
    S.COMMAND_TOMORROW: "amanhã",
    S.CHAT_WELCOME: (
        "Olá, eu sou o Access Review Bot. Quando uma revisão de acesso precisar da sua decisão, "
        "vou enviá-la aqui para você aprovar ou negar com um clique. Digite **ajuda** para ver "
        "o que posso fazer."
    ),
    S.CHAT_HELP: (
        "Eu ajudo você a concluir suas revisões de acesso do Microsoft Entra sem sair do "
        "Teams.\n\n"
        "- **pendentes**: suas revisões pendentes e quanto falta em cada uma\n"
        "- **adiar 4h** ou **adiar amanhã**: menos lembretes por um tempo\n"
        "- **ajuda**: esta mensagem\n\n"
        "Quando uma revisão precisar de você, envio um cartão: aprovar, negar ou “Não sei”, "
        "com um clique cada."
    ),
    S.CHAT_NOT_UNDERSTOOD: "Não entendi.",
    S.CHAT_WHO_ARE_YOU: "Não consegui identificar você, então não posso listar suas revisões.",
    S.CHAT_SNOOZE_UNAVAILABLE: (
        "Os lembretes não estão ativos aqui, então não há nada para adiar."
    ),
    S.CHAT_SNOOZE_NOTHING_OPEN: (
        "Você não tem revisões pendentes, então não há lembretes para adiar."
    ),
    S.CHAT_SNOOZE_USAGE: "Tente **adiar 4h** ou **adiar amanhã**.",
    S.CHAT_SNOOZE_NOTHING: "Não há nada para adiar agora.",
    S.CHAT_SNOOZED_UNTIL: (
        "Lembretes adiados até: {until} (nunca depois do último lembrete antes de um vencimento)."
    ),
    S.CHAT_TURN_ERROR: "Desculpe, algo deu errado do meu lado. Tente novamente.",
    S.ERROR_UNSUPPORTED_BUTTON: "Este botão não é compatível.",
    S.ERROR_MALFORMED_CARD: (
        "Este cartão enviou dados que não consigo ler. Abra a revisão novamente."
    ),
    S.ERROR_NOT_READY: "O bot está iniciando. Tente novamente em instantes.",
    S.ERROR_BUSY: "O bot está ocupado e não conseguiu confirmar seu clique. Tente novamente em instantes.",
    S.ERROR_UNIDENTIFIED: "Não foi possível identificar sua conta.",
    S.ERROR_SSO_NOT_CONFIGURED: "O logon único não está configurado.",
    S.ERROR_CONSENT_NEEDED: (
        "Seu consentimento é necessário para que o bot possa agir em seu nome."
    ),
    S.ERROR_SIGN_IN_TO_TEAMS: "Entre no Teams e tente novamente.",
    S.LOGIN_PROMPT: "Entre para que sua decisão seja registrada em seu nome.",
    S.MSG_JUSTIFICATION_TOO_LONG: "Essa justificativa é longa demais: uma justificativa pode ter no máximo {detail} caracteres. Encurte-a e tente novamente.",
    S.MSG_NUDGE_NOT_RECIPIENT: "Você só pode lembrar um revisor cuja escalação foi enviada a você. Nada foi enviado.",
    S.REVIEW_APPLIED: "Esta revisão terminou e seus resultados foram aplicados.",
    S.REVIEW_APPLYING: "Esta revisão terminou e seus resultados estão sendo aplicados.",
    S.REVIEW_AUTO_REVIEWED: "Esta revisão terminou. Os itens que ninguém decidiu foram decididos automaticamente.",
    S.REVIEW_AUTO_REVIEWING: "Esta revisão terminou e os itens não decididos estão sendo decididos automaticamente — não é mais possível decidir.",
    S.REVIEW_COMPLETING: "Esta revisão está sendo concluída — não é mais possível decidir.",
    S.REVIEW_NOT_OPEN: "Esta revisão não está aberta para decisões.",
    S.REVIEW_NOT_STARTED: "Esta revisão ainda não começou. Você poderá decidir assim que ela começar.",
    S.REVIEW_STARTING: "Esta revisão está começando. Você poderá decidir em alguns minutos.",
    S.STATUS_APPLIED: "Aplicada",
    S.STATUS_APPLYING: "Aplicando resultados",
    S.STATUS_AUTO_REVIEWED: "Decidida automaticamente",
    S.STATUS_AUTO_REVIEWING: "Decidindo automaticamente — sem mais decisões",
    S.STATUS_COMPLETED: "Concluída",
    S.STATUS_COMPLETING: "Concluindo — sem mais decisões",
    S.STATUS_DELETED: "Excluída",
    S.STATUS_IN_PROGRESS: "Em andamento",
    S.STATUS_NOT_OPEN: "Não aberta para decisões ({status})",
    S.STATUS_NOT_STARTED: "Não iniciada",
    S.STATUS_STARTING: "Iniciando",
}
