/* SPDX-License-Identifier: GPL-2.0 */
/*
 * KTAP output for C tests, kselftest style:
 *
 *   ksft_print_header(); ksft_set_plan(n);
 *   ksft_test_result(cond, fmt, ...);   ok / not ok
 *   ksft_test_result_pass/fail/skip(fmt, ...)
 *   ksft_print_msg(fmt, ...)            "# ..." diagnostics
 *   ksft_exit_fail_msg(fmt, ...)        bail out: exit 1
 *   ksft_exit_skip(fmt, ...)            cannot run here: exit 4
 *   ksft_finished()                     exit 0 if all passed, else 1
 */
#ifndef FTVM_KSFT_H
#define FTVM_KSFT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KSFT_PASS 0
#define KSFT_FAIL 1
#define KSFT_SKIP 4

static struct {
	unsigned int n, pass, fail, skip, plan;
} ksft_cnt;

static inline void ksft_print_header(void)
{
	printf("TAP version 13\n");
	fflush(stdout);
}

static inline void ksft_set_plan(unsigned int plan)
{
	ksft_cnt.plan = plan;
	printf("1..%u\n", plan);
	fflush(stdout);
}

static inline void ksft_vresult(const char *pre, const char *post,
				const char *fmt, va_list ap)
{
	printf("%s %u ", pre, ++ksft_cnt.n);
	vprintf(fmt, ap);
	if (post)
		printf("%s", post);
	fflush(stdout);
}

__attribute__((format(printf, 1, 2)))
static inline void ksft_test_result_pass(const char *fmt, ...)
{
	va_list ap;

	ksft_cnt.pass++;
	va_start(ap, fmt);
	ksft_vresult("ok", NULL, fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 1, 2)))
static inline void ksft_test_result_fail(const char *fmt, ...)
{
	va_list ap;

	ksft_cnt.fail++;
	va_start(ap, fmt);
	ksft_vresult("not ok", NULL, fmt, ap);
	va_end(ap);
}

/* The description must end in a newline; " # SKIP" goes before it. */
__attribute__((format(printf, 1, 2)))
static inline void ksft_test_result_skip(const char *fmt, ...)
{
	char buf[512];
	size_t len;
	va_list ap;

	ksft_cnt.skip++;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	len = strlen(buf);
	if (len && buf[len - 1] == '\n')
		buf[len - 1] = '\0';
	printf("ok %u # SKIP %s\n", ++ksft_cnt.n, buf);
	fflush(stdout);
}

#define ksft_test_result(cond, ...) do {		\
		if (cond)				\
			ksft_test_result_pass(__VA_ARGS__);	\
		else					\
			ksft_test_result_fail(__VA_ARGS__);	\
	} while (0)

__attribute__((format(printf, 1, 2)))
static inline void ksft_print_msg(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

__attribute__((format(printf, 1, 2), noreturn))
static inline void ksft_exit_fail_msg(const char *fmt, ...)
{
	va_list ap;

	printf("Bail out! ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
	exit(KSFT_FAIL);
}

__attribute__((format(printf, 1, 2), noreturn))
static inline void ksft_exit_skip(const char *fmt, ...)
{
	va_list ap;

	printf("1..0 # SKIP ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
	exit(KSFT_SKIP);
}

__attribute__((noreturn))
static inline void ksft_finished(void)
{
	printf("# Totals: pass:%u fail:%u skip:%u\n", ksft_cnt.pass,
	       ksft_cnt.fail, ksft_cnt.skip);
	if (ksft_cnt.n != ksft_cnt.plan)
		printf("# planned %u tests but ran %u\n", ksft_cnt.plan,
		       ksft_cnt.n);
	fflush(stdout);
	exit(ksft_cnt.fail || ksft_cnt.n != ksft_cnt.plan ? KSFT_FAIL : KSFT_PASS);
}

#endif
