// Test support: run a function in a child process and report how it ended and what it wrote to stderr.
// Used for death tests (contract violations, calls through freed thunks): ctest cannot expect a crash, so the test
// starts a child and asserts on its fate itself.
//
// POSIX: the child is a fork() of the test, so `body` may use anything the test set up before.
// Windows: there is no fork(). The child is a new run of the same test executable, told through the environment to
// run only the current test case and to run the body of its n-th call of run_in_child. The test case therefore runs
// again from its start in the child, up to that call (earlier calls return at once without a child): `body` must
// only depend on what the test case computes deterministically before the call, which holds for every test here.
// A crash is reported as the signal that stands for it on POSIX (access violation: SIGSEGV, illegal instruction:
// SIGILL, breakpoint: SIGTRAP (test::sigtrap), abort() and std::terminate: SIGABRT), so that one assertion serves both
// systems.
#pragma once

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#if defined(_WIN32)
#include <member_thunk/detail/os/windows_sdk.hpp>

#include <catch2/catch.hpp>
#else
#include <sys/wait.h>
#include <unistd.h>
#endif

namespace test
{
	/// SIGTRAP, which Windows lacks: there it is the number a breakpoint exception is reported as.
#if defined(SIGTRAP)
	inline constexpr int sigtrap = SIGTRAP;
#else
	inline constexpr int sigtrap = 5;
#endif

	struct child_result
	{
		bool exited = false;
		int exit_code = -1;
		bool signaled = false;
		int signal = 0;
		std::string error_output;
	};

#if defined(_WIN32)
	namespace child_detail
	{
		/// Set in a child's environment: the name of the test case to run, and which run_in_child call is its own.
		inline constexpr const char* test_variable = "MEMBER_THUNK_TEST_CHILD_CASE";
		inline constexpr const char* call_variable = "MEMBER_THUNK_TEST_CHILD_CALL";
		/// The exit code of a child that called abort() (a signal handler turns SIGABRT into this code, since a
		/// Windows process that aborts exits with 3, which a test could also mean).
		inline constexpr unsigned abort_exit_code = 0xE0000006U;

		/// How many times the current test case has called run_in_child before.
		[[nodiscard]] inline int next_call_index()
		{
			static std::string test_name;
			static int calls = 0;
			const std::string current = Catch::getResultCapture().getCurrentTestName();
			if (current != test_name)
			{
				test_name = current;
				calls = 0;
			}
			return calls++;
		}

		[[nodiscard]] inline child_result result_of(DWORD code, std::string error_output)
		{
			child_result result;
			result.error_output = std::move(error_output);
			switch (code)
			{
			case EXCEPTION_ACCESS_VIOLATION:
				result.signaled = true;
				result.signal = SIGSEGV;
				break;
			case EXCEPTION_ILLEGAL_INSTRUCTION:
				result.signaled = true;
				result.signal = SIGILL;
				break;
			case EXCEPTION_BREAKPOINT: // int3: a call through an emptied prebuilt slot (Windows has no SIGTRAP)
				result.signaled = true;
				result.signal = sigtrap;
				break;
			case abort_exit_code:
				result.signaled = true;
				result.signal = SIGABRT;
				break;
			default:
				result.exited = true;
				result.exit_code = static_cast<int>(code);
			}
			return result;
		}

		[[noreturn]] inline void fail(const char* what)
		{
			std::fprintf(stderr, "test: run_in_child: %s failed (error %lu)\n", what, ::GetLastError());
			std::abort();
		}

		/// Starts this executable again as the child for call `index` of the current test case; returns how it ended.
		[[nodiscard]] inline child_result run_self(int index)
		{
			wchar_t path[MAX_PATH];
			const DWORD length = ::GetModuleFileNameW(nullptr, path, MAX_PATH);
			if (length == 0 || length == MAX_PATH)
				fail("GetModuleFileNameW");
			SECURITY_ATTRIBUTES inheritable{sizeof(SECURITY_ATTRIBUTES), nullptr, TRUE};
			HANDLE read_end = nullptr;
			HANDLE write_end = nullptr;
			if (::CreatePipe(&read_end, &write_end, &inheritable, 0) == 0)
				fail("CreatePipe");
			::SetHandleInformation(read_end, HANDLE_FLAG_INHERIT, 0);
			HANDLE null_output = ::CreateFileW(L"NUL", GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE, &inheritable,
			                                   OPEN_EXISTING, 0, nullptr);
			if (null_output == INVALID_HANDLE_VALUE)
				fail("CreateFileW(NUL)");

			STARTUPINFOW startup{};
			startup.cb = sizeof startup;
			startup.dwFlags = STARTF_USESTDHANDLES;
			startup.hStdInput = nullptr;
			startup.hStdOutput = null_output; // the child's Catch report says nothing the parent needs
			startup.hStdError = write_end;
			PROCESS_INFORMATION process{};
			std::wstring command_line = L"\"" + std::wstring(path, length) + L"\"";
			const std::string call = std::to_string(index);
			::SetEnvironmentVariableA(test_variable, Catch::getResultCapture().getCurrentTestName().c_str());
			::SetEnvironmentVariableA(call_variable, call.c_str());
			std::fflush(nullptr);
			const BOOL created = ::CreateProcessW(path, command_line.data(), nullptr, nullptr, TRUE, 0, nullptr,
			                                      nullptr, &startup, &process);
			::SetEnvironmentVariableA(test_variable, nullptr);
			::SetEnvironmentVariableA(call_variable, nullptr);
			::CloseHandle(write_end);
			::CloseHandle(null_output);
			if (created == 0)
				fail("CreateProcessW");

			std::string error_output;
			char buffer[512];
			DWORD n = 0;
			while (::ReadFile(read_end, buffer, sizeof buffer, &n, nullptr) != 0 && n != 0)
				error_output.append(buffer, n);
			::CloseHandle(read_end);
			::WaitForSingleObject(process.hProcess, INFINITE);
			DWORD code = 0;
			if (::GetExitCodeProcess(process.hProcess, &code) == 0)
				fail("GetExitCodeProcess");
			::CloseHandle(process.hThread);
			::CloseHandle(process.hProcess);
			return result_of(code, std::move(error_output));
		}

		extern "C" inline void exit_on_abort(int)
		{
			std::fflush(stderr);
			std::_Exit(static_cast<int>(abort_exit_code));
		}
	} // namespace child_detail

	/// Runs `body` in a child process. If it returns, the child exits with status 0.
	template<class Body>
	[[nodiscard]] child_result run_in_child(Body&& body)
	{
		const int index = child_detail::next_call_index();
		if (const char* own = std::getenv(child_detail::call_variable))
		{
			// In the child: earlier calls are skipped (their checks fail silently, the output goes nowhere).
			if (std::atoi(own) != index)
				return {};
			// A crash must end the process with its exception code, with no error dialog or debugger.
			::SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX | SEM_NOOPENFILEERRORBOX);
			std::signal(SIGABRT, child_detail::exit_on_abort);
			body();
			std::fflush(nullptr);
			std::_Exit(0);
		}
		return child_detail::run_self(index);
	}
#else
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
#endif
} // namespace test
