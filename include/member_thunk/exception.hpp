// member_thunk: the exceptions the library throws.
//
// Every exception derives from member_thunk::exception (catch that one type to catch them all) and, exactly once,
// from std::exception (through the standard class that fits: std::logic_error or std::system_error).
#pragma once

#include <stdexcept>
#include <string>
#include <system_error>

namespace member_thunk
{
	/// Base of every exception member_thunk throws. It is a mix-in, not a std::exception itself, so that the
	/// concrete classes keep a single std::exception base and `catch (const std::exception&)` still catches them.
	class exception
	{
	public:
		exception() = default;
		exception(const exception&) = default;
		exception& operator=(const exception&) = default;
		exception(exception&&) = default;
		exception& operator=(exception&&) = default;
		virtual ~exception() = default;

		/// What failed and why, in English.
		[[nodiscard]] virtual const char* what() const noexcept = 0;
	};

	/// A thunk was requested from a page that has no free slot left (check page::full() first).
	class page_full final : public std::logic_error, public exception
	{
	public:
		page_full() :
		    std::logic_error("member_thunk: the page is full: it has no free slot for another thunk; allocate another "
		                     "page")
		{
		}

		[[nodiscard]] const char* what() const noexcept override { return std::logic_error::what(); }
	};

	/// A thunk was requested from a page that was already made executable; a sealed page never becomes writable again.
	class page_executable final : public std::logic_error, public exception
	{
	public:
		page_executable() :
		    std::logic_error("member_thunk: the page is already executable: thunks can only be made before "
		                     "mark_executable(); allocate another page")
		{
		}

		[[nodiscard]] const char* what() const noexcept override { return std::logic_error::what(); }
	};

	/// No prebuilt stub is left: the OS refused every way of mapping more of them (so the program's own image pool
	/// served), and the pool is exhausted. what() says why each way was refused and how to make the pool larger.
	class image_pool_exhausted final : public std::runtime_error, public exception
	{
	public:
		explicit image_pool_exhausted(const std::string& refusals) :
		    std::runtime_error("member_thunk: no prebuilt thunk is left: the image pool of stubs compiled into the "
		                       "program is exhausted (define MEMBER_THUNK_IMAGE_POOL_TABLES larger, in every "
		                       "translation unit), and no more stubs could be mapped" +
		                       (refusals.empty() ? std::string() : " (" + refusals + ")"))
		{
		}

		[[nodiscard]] const char* what() const noexcept override { return std::runtime_error::what(); }
	};

	/// An operating-system call failed. code() is the OS error (errno on POSIX, GetLastError() on Windows) and what()
	/// names the library operation and the OS call that failed.
	class os_error final : public std::system_error, public exception
	{
	public:
		os_error(std::error_code code, const std::string& what) : std::system_error(code, what) {}

		[[nodiscard]] const char* what() const noexcept override { return std::system_error::what(); }
	};
} // namespace member_thunk
