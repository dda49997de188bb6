/* SPDX-License-Identifier: GPL-2.0 */
/* Small helpers shared by ftctl and ftd. */
#ifndef FTVM_UTIL_H
#define FTVM_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* True when @prefix is a non-empty prefix of @word ("ls" matches "list"
 * would not; "l" and "li" match "list"). */
bool matches(const char *prefix, const char *word);

int parse_u32(const char *s, uint32_t *out);
int parse_u64(const char *s, uint64_t *out);
int parse_mac(const char *s, uint8_t mac[6]);
void format_mac(const uint8_t mac[6], char *buf, size_t len);

/* "Error: ..." on stderr; under JSON output {"error": "..."} on stdout. */
void pr_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

uint64_t monotonic_ns(void);

#endif
