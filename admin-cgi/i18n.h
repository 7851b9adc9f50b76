#ifndef BLTCY_I18N_H
#define BLTCY_I18N_H

/* Labels in Chinese or English (i18n.c, the texts in labels.h). */
#include "labels.h"

enum lang { LANG_ZH, LANG_EN, LANG__MAX };

enum lang lang_pick(const char *accept_language);
const char *lbl(enum lang, enum label);

/* A label in the language of request r. */
#define T(r, l)	lbl((r)->lang, (l))

#endif
