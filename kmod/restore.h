/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _FTVM_RESTORE_H
#define _FTVM_RESTORE_H

#include <net/genetlink.h>

#include "state.h"

int ftvm_restore_doit(struct sk_buff *skb, struct genl_info *info);
int ftvm_activate_doit(struct sk_buff *skb, struct genl_info *info);

/* Free every record staged in @st.  Store mutex held. */
void ftvm_restore_flush(struct ftvm_sstore *st);

#endif /* _FTVM_RESTORE_H */
