// Test support: run a function in a forked child process and report how it ended and what it wrote to stderr.
// Used for death tests (contract violations, calls through freed thunks): ctest cannot expect a signal, so the
// test forks and asserts on the child's fate itself.
#pragma once

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

namespace test
{
	struct child_result
	{
		bool exited = false;
		int exit_code = -1;
		bool signaled = false;
		int signal = 0;
		std::string error_output;
	};

	/// Runs `body` in a child process. If it returns, the child exits with status 0.
	template<class Body>
	[[nodiscard]] child_result run_in_child(Body&& body)
	{
		int pipe_fds[2];
		if (::pipe(pipe_fds) != 0)
			std::abort();
		std::fflush(nullptr);
		const pid_t pid = ::fork();
		if (pid < 0)
			std::abort();
		if (pid == 0)
		{
			::close(pipe_fds[0]);
			::dup2(pipe_fds[1], STDERR_FILENO);
			// A crash must end the child with its signal, not in a debugger or a sanitizer report loop.
			std::signal(SIGSEGV, SIG_DFL);
			std::signal(SIGBUS, SIG_DFL);
			std::signal(SIGILL, SIG_DFL);
			std::signal(SIGTRAP, SIG_DFL);
			std::signal(SIGABRT, SIG_DFL);
			body();
			std::fflush(nullptr);
			::_exit(0);
		}
		::close(pipe_fds[1]);
		child_result result;
		char buffer[512];
		ssize_t n = 0;
		while ((n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0)
			result.error_output.append(buffer, static_cast<std::size_t>(n));
		::close(pipe_fds[0]);
		int status = 0;
		while (::waitpid(pid, &status, 0) < 0)
		{
		}
		result.exited = WIFEXITED(status);
		result.exit_code = result.exited ? WEXITSTATUS(status) : -1;
		result.signaled = WIFSIGNALED(status);
		result.signal = result.signaled ? WTERMSIG(status) : 0;
		return result;
	}
} // namespace test
